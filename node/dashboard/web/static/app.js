// Live updates for the Vultron dashboard. The pages work without this
// script; with it, a page follows the node's changes over Server-Sent
// Events and swaps in a fresh copy of its content when what it shows has
// changed.
(function () {
  "use strict";
  var marker = document.querySelector("[data-live]");
  if (!marker || !window.EventSource) {
    return;
  }
  // The stream compares the node's state with the one the content shown
  // was rendered from, so a change in between is not missed: the page's
  // at first, then that of each fresh copy swapped in.
  var state = marker.getAttribute("data-state") || "";
  var caseID = marker.getAttribute("data-live");
  function streamURL() {
    var url = "/ui/events?state=" + encodeURIComponent(state);
    if (caseID) {
      url += "&case=" + encodeURIComponent(caseID);
    }
    return url;
  }
  var busy = false;
  function refresh() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        // A page that answers with another one (the login page, once the
        // session has ended: a logout in another tab, a revocation) is
        // gone: go where it sent us.
        if (r.redirected) {
          window.location.assign(r.url);
          return Promise.reject("moved");
        }
        return r.ok ? r.text() : Promise.reject(r.status);
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var live = document.getElementById("live");
        // Do not pull a form from under someone typing into it.
        var active = document.activeElement;
        if (fresh && live && !(active && live.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT"))) {
          // The outcome of the last form is shown once; keep it on screen.
          var flash = live.querySelector(".flash");
          if (flash && !fresh.querySelector(".flash")) {
            fresh.insertBefore(flash, fresh.firstChild);
          }
          live.replaceWith(fresh);
          var freshMarker = fresh.querySelector("[data-live]");
          if (freshMarker) {
            state = freshMarker.getAttribute("data-state") || "";
          }
          document.body.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  function listen() {
    var source = new EventSource(streamURL());
    source.addEventListener("changed", refresh);
    // The session has ended: loading the page again leads to the login page.
    source.addEventListener("ended", function () {
      source.close();
      window.location.reload();
    });
    // A stream whose answer was not 200 (the node's 503 while its store
    // cannot serve, a proxy's 502 while no process is up, a 401 once the
    // session has ended) is closed by the browser, not opened again as
    // after a broken connection: the page is loaded again (which leads to
    // the login page when the session has ended) and the stream opened
    // again after a while.
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        refresh();
        setTimeout(listen, 5000);
      }
    });
  }
  listen();
})();
