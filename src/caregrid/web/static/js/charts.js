/* Charts of the caregrid pages, drawn with the vendored ECharts (no CDN).
 * Each chart is a <div data-chart="kind" data-source="id-of-json-script">; the data is embedded
 * in the page as <script type="application/json"> so the page needs no extra request and no
 * inline JavaScript (the Content-Security-Policy forbids it). */
(function () {
  "use strict";

  var FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif';
  var PALETTE = ["#1d5fa8", "#3f9bd6", "#43a58a", "#e0a23a", "#8a6bbf", "#d9615b"];

  function stackedBar(data) {
    var names = data.categories.slice().reverse();
    return {
      color: PALETTE,
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, textStyle: { fontFamily: FONT, fontSize: 13 } },
      grid: { left: 8, right: 24, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: {
        type: "category",
        data: names,
        axisLabel: { fontFamily: FONT, fontSize: 13, width: 220, overflow: "truncate" }
      },
      series: data.series.map(function (s) {
        return {
          name: s.name,
          type: "bar",
          stack: "total",
          barMaxWidth: 28,
          emphasis: { focus: "series" },
          label: { show: true, fontFamily: FONT, formatter: function (p) { return p.value ? p.value : ""; } },
          data: s.data.slice().reverse()
        };
      })
    };
  }

  function barPercent(data) {
    var series = data.series.map(function (s) {
      return {
        name: s.name,
        type: "bar",
        barMaxWidth: 26,
        label: { show: data.series.length === 1, position: "top", fontFamily: FONT, formatter: "{c}%" },
        data: s.data
      };
    });
    if (data.target !== undefined && data.target !== null) {
      series[0].markLine = {
        symbol: "none",
        lineStyle: { color: "#d9615b", type: "dashed" },
        label: { formatter: (data.target_name || "目标") + " {c}%", fontFamily: FONT },
        data: [{ yAxis: data.target }]
      };
    }
    return {
      color: PALETTE,
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
      legend: { top: 0, textStyle: { fontFamily: FONT, fontSize: 13 } },
      grid: { left: 8, right: 24, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.categories, axisLabel: { fontFamily: FONT, interval: 0, width: 110, overflow: "truncate" } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: series
    };
  }

  function line(data) {
    return {
      color: PALETTE,
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { fontFamily: FONT, fontSize: 13 } },
      grid: { left: 8, right: 24, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.categories },
      yAxis: { type: "value", minInterval: 1 },
      series: data.series.map(function (s) {
        return { name: s.name, type: "line", smooth: true, symbolSize: 6, data: s.data };
      })
    };
  }

  var BUILDERS = { "stacked-bar": stackedBar, "bar-percent": barPercent, "line": line };
  var FIXED_HEIGHT = { "bar-percent": 340, "line": 300 };

  function init() {
    if (typeof window.echarts === "undefined") { return; }
    var nodes = document.querySelectorAll("[data-chart]");
    Array.prototype.forEach.call(nodes, function (node) {
      var source = document.getElementById(node.getAttribute("data-source"));
      var build = BUILDERS[node.getAttribute("data-chart")];
      if (!source || !build) { return; }
      var data = JSON.parse(source.textContent);
      var rows = (data.categories || []).length;
      var kind = node.getAttribute("data-chart");
      node.style.height = (FIXED_HEIGHT[kind] || Math.max(220, 60 + rows * 44)) + "px";
      var chart = window.echarts.init(node, null, { renderer: "svg", locale: "ZH" });
      chart.setOption(build(data));
      node.setAttribute("data-chart-ready", "true");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
