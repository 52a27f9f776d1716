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

  var BUILDERS = { "stacked-bar": stackedBar };

  function init() {
    if (typeof window.echarts === "undefined") { return; }
    var nodes = document.querySelectorAll("[data-chart]");
    Array.prototype.forEach.call(nodes, function (node) {
      var source = document.getElementById(node.getAttribute("data-source"));
      var build = BUILDERS[node.getAttribute("data-chart")];
      if (!source || !build) { return; }
      var data = JSON.parse(source.textContent);
      var rows = (data.categories || []).length;
      node.style.height = Math.max(220, 60 + rows * 44) + "px";
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
