/* Calendar: drag a post to another day to reschedule it (same time of day, GOVHUB_TIMEZONE).
   The API withdraws any approval on edit, so the post goes back to review. */
(function () {
  "use strict";
  var hub = window.hub;
  var cfg = hub.config("calendar-config");
  var message = document.getElementById("cal-message");
  var dragged = null;
  document.querySelectorAll(".chip[draggable=true]").forEach(function (chip) {
    chip.addEventListener("dragstart", function (event) {
      dragged = chip;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", chip.dataset.post);
      chip.classList.add("dragging");
    });
    chip.addEventListener("dragend", function () { chip.classList.remove("dragging"); });
  });
  document.querySelectorAll(".day[data-day]").forEach(function (cell) {
    cell.addEventListener("dragover", function (event) { if (dragged) { event.preventDefault(); cell.classList.add("over"); } });
    cell.addEventListener("dragleave", function () { cell.classList.remove("over"); });
    cell.addEventListener("drop", async function (event) {
      event.preventDefault();
      cell.classList.remove("over");
      if (!dragged) return;
      var chip = dragged;
      dragged = null;
      var when = hub.zonedToIso(cell.dataset.day + "T" + chip.dataset.time, cfg.timezone);
      try {
        await hub.api("PATCH", "/api/v1/posts/" + chip.dataset.post, { scheduled_at: when });
        cell.appendChild(chip);
        chip.classList.add("moved");
        hub.say(message, hub.t("已改期，改期后需重新审核"), "warning");
      } catch (e) {
        hub.say(message, e.message, "error");
      }
    });
  });
})();
