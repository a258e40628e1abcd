// Template gallery: a picker's button puts its item's id in the input it belongs to (added to a
// list for an input that takes several). No inline handlers (CSP): one delegated listener.
"use strict";

document.addEventListener("click", function (event) {
  var target = event.target;
  var button = target instanceof Element ? target.closest("button.pick") : null;
  if (!button) {
    return;
  }
  var input = document.getElementById("in-" + button.getAttribute("data-field"));
  if (!input) {
    return;
  }
  var value = button.getAttribute("data-value") || "";
  if (button.getAttribute("data-multiple") === "true") {
    var ids = input.value.split(/[\s,;]+/).filter(function (id) { return id !== ""; });
    if (ids.indexOf(value) === -1) {
      ids.push(value);
    }
    input.value = ids.join(", ");
  } else {
    input.value = value;
  }
  button.setAttribute("aria-pressed", "true");
  input.dispatchEvent(new Event("change", { bubbles: true }));
});
