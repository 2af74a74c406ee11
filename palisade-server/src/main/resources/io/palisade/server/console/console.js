// palisade console: copy buttons, "Pending…" feedback, Ctrl+Enter in the SQL editor, and the charts (uPlot).
// Loaded as a file (the Content-Security-Policy allows no inline script); no eval, no innerHTML of data.
(function () {
  "use strict";

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Copy failed"; });
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { copy(button); }
    var windowButton = event.target.closest("[data-window]");
    if (windowButton) { loadCharts(windowButton.getAttribute("data-window")); }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.id === "sql") {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });

  // every action's feedback element says "Pending…" while its request runs
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("feedback")) {
      target.textContent = "Pending…";
      target.setAttribute("aria-busy", "true");
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var target = event.detail.target;
    if (target && target.removeAttribute) { target.removeAttribute("aria-busy"); }
  });
  document.addEventListener("htmx:sendError", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("feedback")) {
      target.textContent = "The console could not reach palisade; check the server and try again.";
    }
  });

  var SERIES = [
    ["connections", "Connections", ""],
    ["transactions_per_second", "Transactions/s", ""],
    ["cpu_percent", "CPU", "%"],
    ["memory_bytes", "Memory", "B"],
    ["storage_bytes", "Storage", "B"],
    ["proxy_connections", "Proxy connections", ""],
    ["proxy_bytes_per_second", "Proxy traffic", "B/s"],
    ["broker_requests_per_second", "Broker requests/s", ""],
    ["archive_lag_bytes", "Archive lag", "B"]
  ];
  var plots = [];

  function human(value, unit) {
    if (value == null) { return ""; }
    if (unit.charAt(0) === "B") {
      var units = ["", "Ki", "Mi", "Gi", "Ti"], i = 0;
      while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
      return value.toFixed(i === 0 ? 0 : 1) + " " + units[i] + unit;
    }
    return (Math.round(value * 100) / 100) + unit;
  }

  function loadCharts(window_) {
    var section = document.getElementById("charts");
    if (!section || typeof uPlot === "undefined") { return; }
    section.querySelectorAll("[data-window]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-window") === window_ ? "true" : "false");
    });
    var status = section.querySelector(".chart-status");
    status.textContent = "Loading…";
    fetch(section.getAttribute("data-metrics") + "?window=" + encodeURIComponent(window_),
          { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) {
          status.textContent = result.body.detail || "The metrics could not be loaded.";
          section.setAttribute("data-points", "0");
          return;
        }
        draw(section, result.body, window_);
      })
      .catch(function () { status.textContent = "The metrics could not be loaded."; });
  }

  function draw(section, body, window_) {
    var container = section.querySelector(".plots");
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    while (container.firstChild) { container.removeChild(container.firstChild); }
    var width = plotWidth(container);
    var total = 0;
    SERIES.forEach(function (s) {
      var data = body.series && body.series[s[0]];
      if (!data) { return; }
      var xs = [], ys = [], points = 0;
      data.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); if (p[1] != null) { points++; } });
      total += points;
      var figure = document.createElement("figure");
      figure.className = "chart";
      figure.setAttribute("data-series", s[0]);
      figure.setAttribute("data-points", String(points));
      var caption = document.createElement("figcaption");
      var last = ys.length ? ys[ys.length - 1] : null;
      caption.textContent = s[1] + (last == null ? "" : ": " + human(last, s[2]));
      figure.appendChild(caption);
      container.appendChild(figure);
      var unit = s[2];
      plots.push(new uPlot({
        width: width, height: 160,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return human(v, unit); }); }, size: 70 }],
        series: [{}, { label: s[1], stroke: "#2563eb", fill: "rgba(37,99,235,0.08)", spanGaps: false }]
      }, [xs, ys], figure));
    });
    section.setAttribute("data-points", String(total));
    section.querySelector(".chart-status").textContent = (window_ === "1d" ? "Last day" : "Last hour")
      + ", one point every " + body.step_seconds + " s" + (total === 0 ? " — no samples yet" : "");
  }

  function plotWidth(container) {
    return Math.max(200, Math.min(560, container.clientWidth - 24));
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      var container = document.querySelector("#charts .plots");
      if (!container) { return; }
      plots.forEach(function (p) { p.setSize({ width: plotWidth(container), height: 160 }); });
    }, 100);
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("charts")) { loadCharts("1h"); }
  });
})();
