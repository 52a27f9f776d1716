/* The referral board's monthly chart: upward and downward referrals as bars and the downward
 * share as a line on a second axis. Same conventions as charts.js (data in a JSON script, no
 * inline JavaScript). */
(function () {
  "use strict";
  var FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif';

  function trend(data) {
    return {
      color: ["#1d5fa8", "#43a58a", "#e0a23a"],
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { fontFamily: FONT, fontSize: 13 } },
      grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.categories },
      yAxis: [
        { type: "value", name: "人次", minInterval: 1 },
        { type: "value", name: "下转占比 %", min: 0, max: 100, splitLine: { show: false } }
      ],
      series: [
        { name: "上转", type: "bar", data: data.up, barMaxWidth: 22 },
        { name: "下转", type: "bar", data: data.down, barMaxWidth: 22 },
        { name: "下转占比", type: "line", yAxisIndex: 1, data: data.share, smooth: true }
      ]
    };
  }

  function init() {
    if (typeof window.echarts === "undefined") { return; }
    var nodes = document.querySelectorAll('[data-chart="referral-trend"]');
    Array.prototype.forEach.call(nodes, function (node) {
      var source = document.getElementById(node.getAttribute("data-source"));
      if (!source) { return; }
      node.style.height = "320px";
      var chart = window.echarts.init(node, null, { renderer: "svg", locale: "ZH" });
      chart.setOption(trend(JSON.parse(source.textContent)));
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
