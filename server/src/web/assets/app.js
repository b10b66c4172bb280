// Etalon pages: progressive enhancement only — every page works without this script.
"use strict";
(function () {
  var swaps = 0;

  // Put the <main> of a fetched page in place of this one's, as if the browser had loaded it: title,
  // address (a history entry, so Back works), focus on what the page asks to focus.
  function show(url, html, started) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.querySelector("main");
    if (!main) { window.location.assign(url); return; }
    document.title = doc.title;
    document.querySelector("main").replaceWith(main);
    history.pushState({ etalon: true }, "", url);
    enhance(main);
    var target = main.querySelector("[autofocus]") || main;
    target.focus();
    // Measured for the browser test: from the click to the next question in place (before paint).
    requestAnimationFrame(function () {
      window.__etalonSwap = performance.now() - started;
      swaps += 1;
      document.documentElement.setAttribute("data-swaps", String(swaps));
    });
  }

  function swapTo(url, options, started, fallback) {
    fetch(url, Object.assign({ credentials: "same-origin", headers: { "Accept": "text/html" } }, options))
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text().then(function (html) { show(r.url, html, started); });
      })
      .catch(fallback);
  }

  function enhance(root) {
    // A form marked data-once is sent once: a second click (or Enter) does nothing. Marked
    // data-swap too, it is sent in the background and the next page replaces this one in place.
    root.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.sent) { event.preventDefault(); return; }
        form.dataset.sent = "1";
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
        if (!form.hasAttribute("data-swap") || !window.fetch) return;
        event.preventDefault();
        var started = performance.now();
        var body = new URLSearchParams(new FormData(form));
        // On any failure, send the form the ordinary way: the server takes a repeat as a replay.
        swapTo(form.action, { method: "POST", body: body }, started, function () { form.submit(); });
      });
    });
    root.querySelectorAll("a[data-swap]").forEach(function (a) {
      a.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || !window.fetch) return;
        event.preventDefault();
        swapTo(a.href, {}, performance.now(), function () { window.location.assign(a.href); });
      });
    });
    // A region with data-refresh is reloaded from that URL every 5 seconds (the live campaign view).
    root.querySelectorAll("[data-refresh]").forEach(function (region) {
      var url = region.getAttribute("data-refresh");
      setInterval(function () {
        fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) return;
            var doc = new DOMParser().parseFromString(html, "text/html");
            if (region.innerHTML !== doc.body.innerHTML) region.innerHTML = doc.body.innerHTML;
          })
          .catch(function () {});
      }, 5000);
    });
  }

  // Back and Forward over pages shown in place: ask the server where the session is.
  window.addEventListener("popstate", function () {
    if (swaps > 0 && !window.location.hash) window.location.reload();
  });
  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    // A form marked data-autosubmit goes at once (the deep linking answer to the LMS).
    document.querySelectorAll("form[data-autosubmit]").forEach(function (form) { form.submit(); });
  });
})();
