/* Live lists: a table body marked data-live="<rows URL>" data-live-kinds="run event" is
   fetched again when /console/live says runs or events changed, at most once a second however
   many changes come. Chosen checkboxes stay chosen; a body holding the keyboard focus waits
   until the focus leaves it. The pause button stops and restarts the updates. */
(function () {
  "use strict";
  var GAP = 1000;
  var rows = document.querySelector("[data-live]");
  if (!rows || typeof window.EventSource !== "function" || typeof window.fetch !== "function") {
    return;
  }
  var status = document.getElementById("live-status");
  var updated = document.getElementById("live-updated");
  var toggle = document.getElementById("live-toggle");
  var kinds = (rows.getAttribute("data-live-kinds") || "run event").split(" ");
  var source = null;
  var timer = null;
  var last = 0;
  var loading = false;
  var again = false;
  var paused = false;

  function say(text) {
    if (status && status.textContent !== text) {
      status.textContent = text; /* a live region: said only when the state changes */
    }
  }

  function stamp() {
    if (updated) {
      updated.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
    }
  }

  function chosen() {
    var boxes = rows.querySelectorAll("input[type=checkbox]:checked");
    return Array.prototype.map.call(boxes, function (box) { return box.value; });
  }

  function choose(values) {
    Array.prototype.forEach.call(rows.querySelectorAll("input[type=checkbox]"), function (box) {
      box.checked = values.indexOf(box.value) !== -1;
    });
  }

  function schedule() {
    if (paused || timer !== null) {
      return;
    }
    timer = window.setTimeout(function () {
      timer = null;
      refresh();
    }, Math.max(0, last + GAP - Date.now()));
  }

  function refresh() {
    if (loading) {
      again = true;
      return;
    }
    if (rows.contains(document.activeElement)) {
      again = true; /* refreshed when the focus leaves the table */
      return;
    }
    loading = true;
    last = Date.now();
    var keep = chosen();
    window.fetch(rows.getAttribute("data-live"), {
      credentials: "same-origin",
      headers: { "HX-Request": "true", "Accept": "text/html" }
    }).then(function (answer) {
      if (answer.status === 401) {
        stop("Live updates stopped: your session has ended. Reload the page to sign in.");
        return null;
      }
      if (!answer.ok) {
        throw new Error("HTTP " + answer.status);
      }
      return answer.text();
    }).then(function (html) {
      if (html !== null && !paused) {
        rows.innerHTML = html;
        choose(keep);
        say("Live updates are on.");
        stamp();
      }
    }).catch(function () {
      say("The list could not be refreshed: trying again with the next change.");
    }).then(function () {
      loading = false;
      if (again) {
        again = false;
        schedule();
      }
    });
  }

  function start() {
    source = new window.EventSource("/console/live");
    kinds.concat(["overflow", "gap"]).forEach(function (kind) { /* missed changes: refresh */
      source.addEventListener(kind, schedule);
    });
    source.addEventListener("error", function () {
      if (source && source.readyState === window.EventSource.CLOSED) {
        stop("Live updates stopped. Reload the page to start them again.");
      }
    });
  }

  function stop(text) {
    if (source) {
      source.close();
      source = null;
    }
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    say(text);
  }

  rows.addEventListener("focusout", function (event) {
    if (again && !rows.contains(event.relatedTarget)) {
      again = false;
      schedule();
    }
  });

  if (toggle) {
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.setAttribute("aria-pressed", paused ? "true" : "false");
      toggle.textContent = paused ? "Resume live updates" : "Pause live updates";
      if (paused) {
        stop("Live updates paused.");
      } else {
        say("Live updates are on.");
        start();
        schedule();
      }
    });
  }
  start();
}());
