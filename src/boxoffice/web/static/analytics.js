/* /admin/analytics: listen to the results stream and reload the charts when a window is published.
   Without this script (or EventSource) the page still shows the charts as they were when it loaded. */
(function () {
  "use strict";
  var root = document.getElementById("analytics-live");
  if (!root || !window.EventSource || !window.htmx) return;
  var status = root.querySelector("[data-live-status]");
  var live = root.querySelector(".live");
  var updates = 0;
  var timer = null;

  function say(text, on) {
    status.textContent = text;
    live.classList.toggle("on", on);
  }

  function reload() {
    if (timer) return;
    // Results of several keys often come together: one reload for the burst.
    timer = setTimeout(function () {
      timer = null;
      htmx.ajax("GET", root.dataset.charts, { target: "#analytics-charts", swap: "innerHTML" }).then(function () {
        updates += 1;
        root.dataset.updates = String(updates);
      });
    }, 150);
  }

  var source = new EventSource(root.dataset.stream);
  source.addEventListener("open", function () { say("Live: charts update as each minute closes", true); });
  source.addEventListener("window", function (event) {
    var result = JSON.parse(event.data);
    say("Live: " + result.total_tickets + " tickets in the minute from " +
        result.window_start.slice(11, 16) + " (revision " + result.revision + ")", true);
    reload();
  });
  source.addEventListener("unavailable", function () { say("Analytics is unavailable; retrying…", false); });
  source.addEventListener("error", function () { say("Reconnecting…", false); });
  window.addEventListener("pagehide", function () { source.close(); });
})();
