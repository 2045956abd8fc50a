/* boxoffice clickstream tracker: page views, clicks, form submissions and custom events, in batches.

   <script src="/tracker.js" defer data-collect="/collect" data-user="USER_ID" data-consent="required"></script>
   boxoffice.track("seat-picked", {seat: "A-1"})

   Batches go out at 20 events, after 5 s, or before they reach 64 KB; on page hide with sendBeacon. A batch
   that cannot be sent waits in localStorage and is retried with exponential back-off and jitter (the
   oldest events go beyond 1,000). Nothing is recorded under Do Not Track or Global Privacy Control, nor
   before consent when the site asks for it (data-consent="required"); the footer switch
   (input[data-tracking-consent]) gives or withdraws it. Form submissions carry field names, never values. */
(function (w, d) {
  "use strict";
  var SERVER = /*SERVER*/{};  // web fills in its settings: {collect, consent}
  var script = d.currentScript || {dataset: {}};
  var cfg = script.dataset || {};
  var URL_ = cfg.collect || SERVER.collect || "/collect";
  var CONSENT = cfg.consent || SERVER.consent;
  var MAX_EVENTS = 20, MAX_WAIT = 5000, MAX_BYTES = 60000, MAX_KEPT = 1000, IDLE = 30 * 60 * 1000;
  var K = {aid: "bo_aid", sid: "bo_sid", seen: "bo_seen", consent: "bo_consent", queue: "bo_queue"};
  var nav = w.navigator;
  var queue = [], timer = 0, retryTimer = 0, tries = 0, lastUrl = d.referrer || null;

  function get(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } }
  function put(k, v) { try { w.localStorage.setItem(k, v); } catch (e) { /* private mode, full: keep going */ } }
  function uuid() {
    if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
    var b = w.crypto.getRandomValues(new Uint8Array(16)), h = [];
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    for (var i = 0; i < 16; i++) h.push((b[i] + 256).toString(16).slice(1));
    h = h.join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function privacySignal() {
    return nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.msDoNotTrack === "1" || nav.globalPrivacyControl === true;
  }
  function allowed() {
    if (privacySignal()) return false;
    var c = get(K.consent);
    return CONSENT === "required" ? c === "yes" : c !== "no";
  }

  function ids() {
    var now = Date.now(), aid = get(K.aid), sid = get(K.sid), seen = +get(K.seen) || 0;
    if (!aid) put(K.aid, aid = uuid());
    if (!sid || now - seen > IDLE) put(K.sid, sid = uuid());
    put(K.seen, String(now));
    return {aid: aid, sid: sid};
  }

  function record(type, extra) {
    if (!allowed()) return;
    var who = ids(), e = {
      event_id: uuid(), type: type, ts: new Date().toISOString(), anonymous_id: who.aid, session_id: who.sid,
      url: w.location.href
    };
    if (cfg.user) e.user_id = cfg.user;
    for (var k in extra) if (extra[k] != null) e[k] = extra[k];
    if (JSON.stringify(queue.concat([e])).length > MAX_BYTES) flush();
    queue.push(e);
    if (queue.length >= MAX_EVENTS) flush();
    else if (!timer) timer = w.setTimeout(flush, MAX_WAIT);
  }

  function body(events) { return JSON.stringify({sent_at: new Date().toISOString(), events: events}); }

  function stored() { try { return JSON.parse(get(K.queue) || "[]"); } catch (e) { return []; } }
  function keep(events) {
    var all = stored().concat(events);
    put(K.queue, JSON.stringify(all.slice(Math.max(0, all.length - MAX_KEPT))));
  }

  function send(events) {
    return w.fetch(URL_, {method: "POST", body: body(events), keepalive: true, credentials: "omit",
                          headers: {"Content-Type": "application/json"}})
      .then(function (r) { if (r.status === 429 || r.status >= 500) throw new Error(r.status); });
  }

  function flush() {
    w.clearTimeout(timer); timer = 0;
    if (!queue.length) return;
    var events = queue; queue = [];
    send(events).then(retry, function () { keep(events); later(); });
  }

  // Stored batches: one attempt at a time; success resets the back-off and sends the next slice.
  function retry() {
    var waiting = stored();
    if (!waiting.length || !allowed()) { tries = 0; return; }
    var slice = waiting.slice(0, MAX_EVENTS * 5);
    put(K.queue, JSON.stringify(waiting.slice(slice.length)));
    send(slice).then(function () { tries = 0; retry(); }, function () {
      put(K.queue, JSON.stringify(slice.concat(stored()).slice(0, MAX_KEPT)));
      later();
    });
  }
  function later() {
    if (retryTimer) return;
    var delay = Math.min(60000, 1000 * Math.pow(2, tries++)) * (0.5 + Math.random() / 2);
    retryTimer = w.setTimeout(function () { retryTimer = 0; retry(); }, delay);
  }

  function beacon() {
    w.clearTimeout(timer); timer = 0;
    if (!queue.length) return;
    var events = queue; queue = [];
    var sent = false;
    try { sent = nav.sendBeacon(URL_, new Blob([body(events)], {type: "text/plain"})); } catch (e) { sent = false; }
    if (!sent) keep(events);
  }

  function pageView() {
    record("page_view", {referrer: lastUrl, title: d.title});
    lastUrl = w.location.href;
  }

  function text(el) { return (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().replace(/\s+/g, " ").slice(0, 100); }

  d.addEventListener("click", function (ev) {
    var el = ev.target && ev.target.closest && ev.target.closest("a,button,[data-track],input[type=submit],input[type=button],[role=button],summary,label");
    if (!el || el.closest("[data-track-ignore]")) return;
    var name = el.getAttribute("data-track") || text(el);
    record("click", {name: name.slice(0, 200) || null, element: {tag: el.tagName.toLowerCase(), text: text(el), track: el.getAttribute("data-track") || ""}});
  }, true);

  d.addEventListener("submit", function (ev) {
    var f = ev.target, names = [];
    if (!f || !f.elements || f.closest("[data-track-ignore]")) return;
    for (var i = 0; i < f.elements.length; i++) {
      var n = f.elements[i].name;
      if (n && f.elements[i].type !== "hidden" && names.indexOf(n) < 0) names.push(n);
    }
    var track = f.getAttribute("data-track") || f.id || f.getAttribute("action") || "";
    record("form_submit", {name: track.slice(0, 200) || null, element: {tag: "form", text: "", track: track.slice(0, 200)},
                           props: {fields: names, method: (f.getAttribute("method") || "get").toLowerCase()}});
  }, true);

  // htmx swaps that change the address, and the back button, are page views too.
  ["htmx:pushedIntoHistory", "htmx:replacedInHistory", "popstate"].forEach(function (name) {
    w.addEventListener(name, function () { if (w.location.href !== lastUrl) pageView(); });
  });
  w.addEventListener("pagehide", beacon);
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });
  w.addEventListener("online", retry);

  function wireSwitch() {
    var box = d.querySelector("input[data-tracking-consent]");
    if (!box) return;
    if (privacySignal()) { box.checked = false; box.disabled = true; box.title = "Your browser asks sites not to track you."; return; }
    box.checked = allowed();
    box.addEventListener("change", function () {
      put(K.consent, box.checked ? "yes" : "no");
      if (!box.checked) { queue = []; put(K.queue, "[]"); } else pageView();
    });
  }

  w.boxoffice = w.boxoffice || {};
  w.boxoffice.track = function (name, props) { record("custom", {name: String(name).slice(0, 200), props: props || null}); };
  w.boxoffice.flush = flush;

  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", wireSwitch); else wireSwitch();
  pageView();
  retry();
})(window, document);
