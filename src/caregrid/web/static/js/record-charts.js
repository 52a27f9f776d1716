/* Trend charts of the resident record page (blood pressure, fasting glucose, HbA1c), drawn with
 * the vendored ECharts. Each chart is a <div data-record-chart="bp|fpg|hba1c"
 * data-source="id-of-json-script">; the series are embedded in the page as
 * <script type="application/json"> (the Content-Security-Policy forbids inline JavaScript).
 * Data: {"sbp": [["2025-06-01", 150], ...], "dbp": [...], "fpg": [...], "hba1c": [...],
 *        "targets": {"sbp": 140, "dbp": 90, "fpg": 7.0, "hba1c": 7.0}} */
(function () {
  "use strict";

  var FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif';
  var TARGET_COLOR = "#d9615b";

  function targetLine(value, label) {
    return {
      silent: true,
      symbol: "none",
      lineStyle: { color: TARGET_COLOR, type: "dashed" },
      label: { formatter: label, fontFamily: FONT, color: TARGET_COLOR },
      data: [{ yAxis: value }]
    };
  }

  function line(name, data, color, target, targetLabel) {
    return {
      name: name,
      type: "line",
      data: data,
      symbolSize: 7,
      color: color,
      markLine: target === undefined ? undefined : targetLine(target, targetLabel)
    };
  }

  var CHARTS = {
    bp: function (d) {
      return {
        title: "血压（mmHg）",
        series: [
          line("收缩压", d.sbp, "#1d5fa8", d.targets.sbp, "目标 " + d.targets.sbp),
          line("舒张压", d.dbp, "#43a58a", d.targets.dbp, "目标 " + d.targets.dbp)
        ]
      };
    },
    fpg: function (d) {
      return {
        title: "空腹血糖（mmol/L）",
        series: [line("空腹血糖", d.fpg, "#e0a23a", d.targets.fpg, "目标 " + d.targets.fpg)]
      };
    },
    hba1c: function (d) {
      return {
        title: "糖化血红蛋白（%）",
        series: [line("糖化血红蛋白", d.hba1c, "#8a6bbf", d.targets.hba1c, "目标 " + d.targets.hba1c + "%")]
      };
    }
  };

  function option(spec) {
    // Keep the target line in view even when every value is above (or below) it.
    var targets = spec.series.map(function (s) { return s.markLine ? s.markLine.data[0].yAxis : null; })
      .filter(function (t) { return t !== null; });
    var low = Math.min.apply(null, targets);
    var high = Math.max.apply(null, targets);
    return {
      textStyle: { fontFamily: FONT },
      title: { text: spec.title, left: 0, top: 0, textStyle: { fontFamily: FONT, fontSize: 14 } },
      tooltip: { trigger: "axis" },
      legend: { top: 0, right: 0, textStyle: { fontFamily: FONT, fontSize: 12 } },
      grid: { left: 8, right: 64, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "time", minInterval: 24 * 3600 * 1000, axisLabel: { fontFamily: FONT, hideOverlap: true } },
      yAxis: {
        type: "value",
        scale: true,
        min: function (v) { return Math.floor(Math.min(v.min, low) * 0.9); },
        max: function (v) { return Math.ceil(Math.max(v.max, high) * 1.05); }
      },
      series: spec.series
    };
  }

  function init() {
    if (typeof window.echarts === "undefined") { return; }
    var nodes = document.querySelectorAll("[data-record-chart]");
    Array.prototype.forEach.call(nodes, function (node) {
      var source = document.getElementById(node.getAttribute("data-source"));
      var build = CHARTS[node.getAttribute("data-record-chart")];
      if (!source || !build) { return; }
      var data = JSON.parse(source.textContent);
      node.style.height = "260px";
      var chart = window.echarts.init(node, null, { renderer: "svg", locale: "ZH" });
      chart.setOption(option(build(data)));
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
