/*
 * Draws the page's charts with Apache ECharts from the JSON the server embedded (#page-data).
 * Tooltips show the server's formatted text; axes use the same rules as formatting.py.
 * When every chart has been drawn, <body data-render-state="ready"> and window.cwDashboard
 * tell a browser test (or a screenshot job) that the page is complete and how many points each
 * chart got; "empty" when a chart had no points, "error" when drawing failed.
 */
(function () {
  "use strict";

  var NBSP = "\u00a0";
  var MINUS = "\u2212";
  var SYMBOLS = { RUB: "₽", USD: "$", EUR: "€", KZT: "₸", BYN: "Br", UZS: "сўм", GBP: "£" };

  function group(digits) {
    var head = digits.length % 3 || 3;
    var parts = [digits.slice(0, head)];
    for (var i = head; i < digits.length; i += 3) parts.push(digits.slice(i, i + 3));
    return parts.join(NBSP);
  }

  function number(value, lang, places) {
    if (value === null || value === undefined || isNaN(value)) return "—";
    var fixed = Math.abs(value).toFixed(places || 0).split(".");
    var text = group(fixed[0]);
    if (fixed[1]) text += (lang === "ru" ? "," : ".") + fixed[1];
    return (value < 0 && Number(fixed.join(".")) !== 0 ? MINUS : "") + text;
  }

  // axis ticks: 1,5 млн / 300 тыс. (1.5M / 300K) keep long money axes readable
  function compact(v, lang) {
    var a = Math.abs(v);
    if (a >= 1e9) return number(v / 1e9, lang, a % 1e9 ? 1 : 0) + NBSP + (lang === "ru" ? "млрд" : "B");
    if (a >= 1e6) return number(v / 1e6, lang, a % 1e6 ? 1 : 0) + NBSP + (lang === "ru" ? "млн" : "M");
    if (a >= 1e4) return number(v / 1e3, lang, 0) + NBSP + (lang === "ru" ? "тыс." : "K");
    return number(v, lang, Number.isInteger(v) ? 0 : 2);
  }

  function formatter(kind, lang, currency) {
    switch (kind) {
      case "money":
        return function (v) { return compact(v, lang) + NBSP + (SYMBOLS[currency] || currency); };
      case "percent":
        return function (v) { return number(v * 100, lang, 0) + (lang === "ru" ? NBSP + "%" : "%"); };
      case "hours":
        return function (v) { return number(v, lang, 1) + NBSP + (lang === "ru" ? "ч" : "h"); };
      default:
        return function (v) { return number(v, lang, Number.isInteger(v) ? 0 : 2); };
    }
  }

  function column(panel, name) {
    for (var i = 0; i < panel.columns.length; i++) if (panel.columns[i].name === name) return i;
    throw new Error("panel " + panel.id + ": no column " + name);
  }

  function xValues(panel) {
    var xi = column(panel, panel.chart.x);
    return panel.rows.map(function (row, r) { return panel.category_axis ? panel.text[r][xi] : row[xi]; });
  }

  function series(panel, names, kind, axisIndex) {
    var c = panel.chart;
    var xs = xValues(panel);
    return names.map(function (name) {
      var ci = column(panel, name);
      var data = panel.rows.map(function (row, r) {
        var value = row[ci] === null ? null : Number(row[ci]);
        return panel.category_axis ? value : [xs[r], value];
      });
      var text = panel.rows.map(function (row, r) { return panel.text[r][ci]; });
      var s = {
        name: panel.columns[ci].label,
        type: kind,
        data: data,
        yAxisIndex: axisIndex,
        showSymbol: panel.rows.length <= 24,
        tooltip: { valueFormatter: function (v, i) { return i === undefined ? String(v) : text[i]; } },
      };
      if (c.stack) s.stack = "total";
      if (kind === "line" && c.area) s.areaStyle = { opacity: 0.15 };
      return s;
    });
  }

  function valueAxis(panel, names, lang, currency) {
    var fmt = panel.columns[column(panel, names[0])].format;
    var axis = { type: "value", axisLabel: { formatter: formatter(fmt, lang, currency) }, splitLine: { show: true } };
    if (fmt === "integer") axis.minInterval = 1;  // counts: no 0,5-customer ticks
    return axis;
  }

  function cartesian(panel, lang, currency) {
    var c = panel.chart;
    var kind = c.type === "line" ? "line" : "bar";
    var all = series(panel, c.y, kind, 0);
    var yAxes = [valueAxis(panel, c.y, lang, currency)];
    if (c.y2 && c.y2.length) {
      all = all.concat(series(panel, c.y2, c.y2_type || "line", 1));
      var second = valueAxis(panel, c.y2, lang, currency);
      second.splitLine = { show: false };
      yAxes.push(second);
    }
    if (c.reference_line !== undefined) {
      all[0].markLine = { silent: true, symbol: "none", data: [{ yAxis: c.reference_line }],
                          lineStyle: { type: "dashed", color: "#888" }, label: { show: false } };
    }
    var xFmt = panel.columns[column(panel, c.x)].format;
    var xAxis = panel.category_axis
      ? { type: "category", data: xValues(panel),
          axisLabel: { interval: 0, hideOverlap: true, width: c.horizontal ? 170 : 110, overflow: "truncate" } }
      : { type: "value", min: "dataMin", max: "dataMax", axisLabel: { formatter: formatter(xFmt, lang, currency) } };
    var option = {
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { show: all.length > 1, top: 0 },
      grid: { left: 8, right: 16, top: all.length > 1 ? 32 : 16, bottom: 8, containLabel: true },
      series: all,
    };
    if (c.horizontal) {
      xAxis.inverse = true;
      option.yAxis = xAxis;
      option.xAxis = yAxes;
      all.forEach(function (s) { s.xAxisIndex = s.yAxisIndex; delete s.yAxisIndex; });
    } else {
      option.xAxis = xAxis;
      option.yAxis = yAxes;
    }
    return option;
  }

  function pie(panel) {
    var c = panel.chart;
    var xi = column(panel, c.x);
    var yi = column(panel, c.y[0]);
    return {
      animation: false,
      tooltip: { trigger: "item", formatter: function (p) { return p.name + ": " + panel.text[p.dataIndex][yi]; } },
      legend: { show: false },  // the slices carry their own labels
      series: [{
        type: "pie", radius: ["35%", "65%"],
        data: panel.rows.map(function (row, r) { return { name: panel.text[r][xi], value: Number(row[yi]) }; }),
      }],
    };
  }

  function points(option) {
    return option.series.reduce(function (n, s) {
      return n + s.data.filter(function (d) { return d !== null && (!Array.isArray(d) || d[1] !== null); }).length;
    }, 0);
  }

  function draw(panel, lang, currency) {
    var el = document.getElementById("chart-" + panel.id);
    var option = panel.type === "pie" ? pie(panel) : cartesian(panel, lang, currency);
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option);
    var n = points(option);
    el.dataset.points = String(n);
    el.dataset.rendered = "true";
    return { chart: chart, points: n };
  }

  function main() {
    var page = JSON.parse(document.getElementById("page-data").textContent);
    var state = { ready: false, state: "loading", charts: {}, errors: [] };
    window.cwDashboard = state;
    var charts = [];
    page.panels.forEach(function (panel) {
      if (panel.state !== "ok" || panel.type === "table") return;
      try {
        var drawn = draw(panel, page.lang, page.currency);
        charts.push(drawn.chart);
        state.charts[panel.id] = drawn.points;
      } catch (err) {
        state.errors.push(panel.id + ": " + err.message);
        console.error("chart " + panel.id + " failed:", err);
      }
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    var empty = Object.keys(state.charts).filter(function (id) { return state.charts[id] === 0; });
    state.state = state.errors.length ? "error" : empty.length ? "empty" : "ready";
    state.ready = state.state === "ready";
    document.body.dataset.charts = String(Object.keys(state.charts).length);
    document.body.dataset.renderState = state.state;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
