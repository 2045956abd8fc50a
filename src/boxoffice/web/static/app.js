/* boxoffice pages: seat pickers, the hold countdown, confirmations, the check-in scanner.
   Plain JS, no build step; everything is progressive: pages work (less comfortably) without it. */
(function () {
  "use strict";

  // Seat pickers: SVG seats act as checkboxes; picks become hidden seat_id inputs of the form.
  function initPicker(form) {
    var max = parseInt(form.dataset.max || "10", 10);
    var picked = new Map();
    var inputs = form.querySelector(".seat-inputs");
    var summary = form.querySelector(".selection");
    var notice = form.querySelector(".seat-notice");
    var button = form.querySelector("button[type=submit]");

    function render() {
      form.querySelectorAll(".seat").forEach(function (seat) {
        var on = picked.has(seat.dataset.seatId);
        seat.classList.toggle("selected", on);
        seat.setAttribute("aria-checked", on ? "true" : "false");
      });
      inputs.textContent = "";
      picked.forEach(function (label, id) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "seat_id";
        input.value = id;
        inputs.appendChild(input);
      });
      var labels = Array.from(picked.values());
      summary.textContent = labels.length
        ? labels.length + (labels.length === 1 ? " seat picked: " : " seats picked: ") + labels.join(", ") + total()
        : "No seats picked yet.";
      button.disabled = labels.length === 0;
    }

    // What the picks cost: each seat's price (venues) or the class fare per seat (trains).
    function total() {
      var sum = 0, known = true;
      picked.forEach(function (label, id) {
        var seat = form.querySelector('[data-seat-id="' + id + '"]');
        var price = seat && (seat.dataset.price || form.dataset.fare);
        if (price) sum += parseInt(price, 10); else known = false;
      });
      if (!known || !form.dataset.currency) return "";
      try {
        return " · " + new Intl.NumberFormat("en-GB", { style: "currency", currency: form.dataset.currency }).format(sum / 100);
      } catch (e) { return ""; }
    }

    function toggle(seat) {
      if (!seat.classList.contains("available")) return;
      var id = seat.dataset.seatId;
      notice.textContent = "";
      if (picked.has(id)) {
        picked.delete(id);
      } else if (picked.size >= max) {
        notice.textContent = "You can pick up to " + max + " seats at once.";
        return;
      } else {
        picked.set(id, seat.dataset.label);
      }
      render();
    }

    function neighbour(seat, key) {
      var svg = seat.ownerSVGElement;
      var x = +seat.getAttribute("x"), y = +seat.getAttribute("y");
      var best = null, bestScore = Infinity;
      svg.querySelectorAll(".seat.available").forEach(function (other) {
        var dx = +other.getAttribute("x") - x, dy = +other.getAttribute("y") - y;
        var ok = (key === "ArrowRight" && dx > 0 && Math.abs(dy) < 5) || (key === "ArrowLeft" && dx < 0 && Math.abs(dy) < 5) ||
                 (key === "ArrowDown" && dy > 0) || (key === "ArrowUp" && dy < 0);
        if (!ok) return;
        var score = key.indexOf("Up") > 0 || key.indexOf("Down") > 0 ? Math.abs(dy) * 1000 + Math.abs(dx) : Math.abs(dx);
        if (score < bestScore) { best = other; bestScore = score; }
      });
      return best;
    }

    form.addEventListener("click", function (event) {
      var seat = event.target.closest(".seat");
      if (seat) toggle(seat);
    });
    form.addEventListener("keydown", function (event) {
      var seat = event.target.closest && event.target.closest(".seat");
      if (!seat) return;
      if (event.key === " " || event.key === "Enter") {
        event.preventDefault();
        toggle(seat);
      } else if (event.key.indexOf("Arrow") === 0) {
        var next = neighbour(seat, event.key);
        if (next) { event.preventDefault(); next.focus(); }
      }
    });
    form.addEventListener("submit", function () { button.disabled = true; });

    // Seats picked before logging in come back picked (the page marks them); taken ones simply are not.
    form.querySelectorAll(".seat[data-picked]").forEach(function (seat) {
      if (seat.classList.contains("available") && picked.size < max) picked.set(seat.dataset.seatId, seat.dataset.label);
    });

    // Fresh seat states arrive by htmx polling; a seat someone else took leaves our picks.
    form.applyStates = function (states) {
      var lost = [];
      form.querySelectorAll(".seat").forEach(function (seat) {
        var status = states[seat.dataset.seatId] || "available";
        ["available", "held", "sold"].forEach(function (s) { seat.classList.toggle(s, s === status); });
        seat.setAttribute("aria-disabled", status === "available" ? "false" : "true");
        if (status !== "available") {
          if (document.activeElement !== seat) seat.setAttribute("tabindex", "-1");
          if (picked.has(seat.dataset.seatId)) { lost.push(seat.dataset.label); picked.delete(seat.dataset.seatId); }
        } else {
          seat.setAttribute("tabindex", "0");
        }
      });
      if (lost.length) {
        notice.textContent = "Sorry, " + lost.join(", ") + (lost.length === 1 ? " was" : " were") + " just taken by someone else.";
        render();
      }
    };
    render();
  }

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var list = event.target.querySelector && event.target.querySelector("[data-seat-states]");
    if (!list) return;
    var states = {};
    list.querySelectorAll("li").forEach(function (li) { states[li.dataset.seat] = li.dataset.status; });
    document.querySelectorAll("form.seat-picker").forEach(function (form) { if (form.applyStates) form.applyStates(states); });
  });

  // The hold countdown: counts from the seconds the server computed (no trust in the device clock).
  function initCountdown(box) {
    var deadline = Date.now() + parseInt(box.dataset.expiresInMs || "0", 10);
    var value = box.querySelector(".countdown-value");
    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      value.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      box.classList.toggle("urgent", left <= 60);
      if (left > 0) { setTimeout(tick, 250); return; }
      box.hidden = true;
      var expired = document.querySelector("[data-testid=hold-expired]");
      if (expired) expired.hidden = false;
      document.querySelectorAll("form.payment button, form.payment input, form.payment select").forEach(function (el) { el.disabled = true; });
    }
    tick();
  }

  function initEventForm(form) {
    form.addEventListener("change", function (event) {
      if (event.target.name === "seating") form.dataset.seating = event.target.value;
    });
  }

  // Check-in. Each scan carries a client nonce: a retry of a scan whose answer was lost repeats it (and the
  // gate answers "admitted" again, marked as a retry); a new scan gets a new one once an answer arrived.
  // The camera scanner decodes frames with the vendored jsQR (/static/vendor/jsQR.min.js) and says so
  // plainly when this device has no camera or the browser may not use it.
  function newNonce() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function initCheckin(form) {
    var input = form.querySelector("#ticket-code");
    var nonce = form.querySelector("#checkin-nonce");
    form.addEventListener("htmx:afterRequest", function (event) {
      if (!event.detail.successful) return;  // keep code and nonce: pressing again is a retry of this scan
      input.value = ""; nonce.value = newNonce(); input.focus();
    });
    var scan = document.getElementById("scan");
    var video = document.getElementById("scanner");
    var note = document.getElementById("scan-note");
    function say(message) { note.hidden = false; note.textContent = message; }
    scan.hidden = false;
    var media = navigator.mediaDevices;
    if (!media || !media.getUserMedia || !window.jsQR) {
      scan.disabled = true;
      say("This browser cannot use a camera here; type or paste the code (a handheld scanner types it too).");
      return;
    }
    if (media.enumerateDevices) {
      media.enumerateDevices().then(function (devices) {
        if (!devices.some(function (d) { return d.kind === "videoinput"; })) {
          scan.disabled = true;
          say("No camera found on this device; type or paste the code (a handheld scanner types it too).");
        }
      }).catch(function () {});
    }
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var stream = null;
    function stop() {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null; video.hidden = true; scan.textContent = "Scan with camera";
    }
    function look() {
      if (!stream) return;
      if (video.readyState >= 2 && video.videoWidth) {
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var frame = context.getImageData(0, 0, canvas.width, canvas.height);
        var found = window.jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" });
        if (found && found.data) { input.value = found.data; stop(); form.requestSubmit(); return; }
      }
      window.requestAnimationFrame(look);
    }
    scan.addEventListener("click", function () {
      if (stream) { stop(); return; }
      media.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
        stream = s; video.srcObject = s; video.hidden = false; scan.textContent = "Stop scanning";
        note.hidden = true;
        return video.play();
      }).then(look).catch(function (error) {
        var none = error && (error.name === "NotFoundError" || error.name === "OverconstrainedError");
        say(none ? "No camera found on this device; type or paste the code instead."
                 : "The camera may not be used (" + (error && error.name || "error") + "); type or paste the code instead.");
        stop();
      });
    });
  }

  document.querySelectorAll("form.seat-picker").forEach(initPicker);
  document.querySelectorAll("[data-expires-in-ms]").forEach(initCountdown);
  document.querySelectorAll("form.event-form").forEach(initEventForm);
  document.querySelectorAll("#checkin-form").forEach(initCheckin);
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("form.payment").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      setTimeout(function () { button.disabled = true; button.textContent = "Paying…"; }, 0);
    });
  });
})();
