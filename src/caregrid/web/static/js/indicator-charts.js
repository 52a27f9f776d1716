/* Cockpit charts: an indicator's monthly trend (line, with its target as a dashed line) and
 * the member comparison (horizontal bars, worst first); groups and grids compared (vertical
 * bars with the target as a dashed line). Data comes from a JSON script named by
 * data-source; no inline JavaScript (the CSP forbids it). */
(function () {
  "use strict";
  var FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif';

  function trend(d) {
    var series = [{ name: d.name, type: "line", data: d.values, smooth: false, connectNulls: true }];
    if (d.target !== null && d.target !== undefined) {
      series[0].markLine = {
        symbol: "none", lineStyle: { type: "dashed", color: "#c0392b" },
        label: { formatter: "目标 " + d.target + d.unit, fontFamily: FONT },
        data: [{ yAxis: d.target }]
      };
    }
    return {
      color: ["#1d5fa8"], textStyle: { fontFamily: FONT },
      title: { text: d.name, textStyle: { fontSize: 14, fontFamily: FONT } },
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 24, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: d.categories },
      yAxis: { type: "value", name: d.unit, scale: true },
      series: series
    };
  }

  function members(d) {
    var rows = d.rows.slice().reverse();  // worst at the top of a horizontal bar chart
    return {
      color: ["#43a58a"], textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 40, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "value", name: d.unit },
      yAxis: { type: "category", data: rows.map(function (r) { return r.member; }) },
      series: [{ name: d.name, type: "bar", data: rows.map(function (r) { return r.value; }),
                 barMaxWidth: 18, label: { show: true, position: "right", formatter: function (p) {
                   return rows[p.dataIndex].display; } } }]
    };
  }

  function compare(d) {
    var series = { name: d.name, type: "bar", data: d.rows.map(function (r) { return r.value; }),
                   barMaxWidth: 36, label: { show: true, position: "top", formatter: function (p) {
                     return d.rows[p.dataIndex].display; } } };
    if (d.target !== null && d.target !== undefined) {
      series.markLine = {
        symbol: "none", lineStyle: { type: "dashed", color: "#c0392b" },
        label: { formatter: "目标 " + d.target_display, fontFamily: FONT },
        data: [{ yAxis: d.target }]
      };
    }
    return {
      animation: false,  // drawn at once: the bars are read, not watched
      color: ["#1d5fa8"], textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: d.rows.map(function (r) { return r.label; }),
               axisLabel: { interval: 0, width: 120, overflow: "break" } },
      yAxis: { type: "value", name: d.unit, scale: false },
      series: [series]
    };
  }

  var BUILDERS = { "indicator-trend": trend, "indicator-members": members,
                   "indicator-compare": compare };

  function init() {
    if (typeof window.echarts === "undefined") { return; }
    Object.keys(BUILDERS).forEach(function (kind) {
      var nodes = document.querySelectorAll('[data-chart="' + kind + '"]');
      Array.prototype.forEach.call(nodes, function (node) {
        var source = document.getElementById(node.getAttribute("data-source"));
        if (!source) { return; }
        var data = JSON.parse(source.textContent);
        var height = kind === "indicator-members" ? Math.max(200, 28 * data.rows.length + 40) : 280;
        node.style.height = height + "px";
        var chart = window.echarts.init(node, null, { renderer: "svg", locale: "ZH" });
        chart.setOption(BUILDERS[kind](data));
        node.setAttribute("data-chart-ready", "true");
        window.addEventListener("resize", function () { chart.resize(); });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
