// Keeps the dashboard current: every few seconds, fetch this page again and swap in its main
// content, unless the operator is typing in a form. No libraries, no inline script (CSP).
(function () {
  "use strict";
  var main = document.getElementById("ops-main");
  if (!main || !main.dataset.refresh) return;
  var seconds = Math.max(2, parseInt(main.dataset.refresh, 10) || 10);
  var busy = false;

  function editing() {
    var active = document.activeElement;
    return active && active.closest && active.closest("#ops-main form") && active.tagName === "INPUT";
  }

  function refresh() {
    if (busy || document.hidden || editing()) return;
    busy = true;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      redirect: "follow",
    }).then(function (response) {
      if (response.redirected || !response.ok) {
        window.location.reload();
        return null;
      }
      return response.text();
    }).then(function (html) {
      if (html === null) return;
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("ops-main");
      if (fresh) main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
    }).catch(function () {
      /* offline for a moment: try again on the next tick */
    }).finally(function () {
      busy = false;
    });
  }

  window.setInterval(refresh, seconds * 1000);
})();
