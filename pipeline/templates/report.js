// Tabs and charts of the mcp-analytics report. The chart specs are JSON in
// #report-data (plotly figures); a tab's charts are drawn the first time it is shown,
// since Plotly sizes a chart from its container, and a hidden one has no size.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = {};
  var config = { displaylogo: false, responsive: true };

  function draw(panel) {
    var boxes = panel.querySelectorAll("[data-chart]");
    for (var i = 0; i < boxes.length; i++) {
      var id = boxes[i].getAttribute("data-chart");
      if (drawn[id]) {
        Plotly.Plots.resize(boxes[i]);
        continue;
      }
      var fig = data.charts[id];
      Plotly.newPlot(boxes[i], fig.data, fig.layout, config);
      boxes[i].setAttribute("data-points", String(fig.points));
      drawn[id] = true;
    }
  }

  function show(tabId) {
    var tabs = document.querySelectorAll("[role=tab]");
    for (var i = 0; i < tabs.length; i++) {
      var on = tabs[i].getAttribute("data-tab") === tabId;
      tabs[i].setAttribute("aria-selected", on ? "true" : "false");
      document.getElementById("panel-" + tabs[i].getAttribute("data-tab")).hidden = !on;
    }
    draw(document.getElementById("panel-" + tabId));
    document.body.setAttribute("data-shown", tabId);
  }

  var buttons = document.querySelectorAll("[role=tab]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (ev) {
      var id = ev.currentTarget.getAttribute("data-tab");
      show(id);
      if (history.replaceState) {
        history.replaceState(null, "", "#" + id);
      }
    });
  }
  var wanted = window.location.hash.replace("#", "");
  show(document.getElementById("panel-" + wanted) ? wanted : buttons[0].getAttribute("data-tab"));
})();
