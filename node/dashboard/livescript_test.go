package dashboard

import (
	"os/exec"
	"strings"
	"testing"
)

// TestALiveStreamTheNodeRefusedIsOpenedAgain runs the dashboard's script
// (web/static/app.js) under Node.js, with a stand-in for the browser's
// EventSource. A browser does not open again by itself an event stream
// whose answer was not 200, such as the 503 of a store that cannot serve
// now (events) or a proxy's 502 while no process is up: it closes it, and
// the live page stopped following the node until it was reloaded. The
// script loads the page again (which leads to the login page when the
// refusal was a 401 of an ended session) and opens the stream again after
// a while; a stream the browser reconnects by itself (an error while it
// is CONNECTING) is left to the browser. The stream opened again carries
// the state of the content the page shows then (the marker of the page it
// loaded), not the state it was first rendered from, or the node would
// send at once a change the page already shows. Node.js is there wherever
// `make test` runs (the interoperability peers need it): a machine
// without it fails the test rather than skip it.
func TestALiveStreamTheNodeRefusedIsOpenedAgain(t *testing.T) {
	nodeJS, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) is not on PATH (%v): install it, as `make test` needs it for the interoperability peers too", err)
	}
	script, err := webFiles.ReadFile("web/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	const harness = `
var opened = [], timers = [], fetched = 0, pageState = "s1";
// Each load of the page answers with content rendered from pageState.
globalThis.fetch = function () {
  fetched++;
  var rendered = pageState;
  return Promise.resolve({ ok: true, redirected: false, text: function () { return Promise.resolve(rendered); } });
};
globalThis.DOMParser = function () {};
globalThis.DOMParser.prototype.parseFromString = function (html) {
  var m = { getAttribute: function (n) { return n === "data-live" ? "https://v.example/cases/c1" : html; } };
  var fresh = { querySelector: function (sel) { return sel === "[data-live]" ? m : null; }, insertBefore: function () {} };
  return { getElementById: function () { return fresh; } };
};
var shown = { contains: function () { return false; }, querySelector: function () { return null; }, replaceWith: function () {} };
function EventSource(url) {
  this.url = url; this.readyState = 0; this.listeners = {};
  opened.push(this);
}
EventSource.CONNECTING = 0; EventSource.OPEN = 1; EventSource.CLOSED = 2;
EventSource.prototype.addEventListener = function (type, f) { (this.listeners[type] = this.listeners[type] || []).push(f); };
EventSource.prototype.close = function () { this.readyState = 2; };
EventSource.prototype.fire = function (type) { (this.listeners[type] || []).forEach(function (f) { f({}); }); };
var marker = { getAttribute: function (n) { return n === "data-live" ? "https://v.example/cases/c1" : "s1"; } };
globalThis.window = { EventSource: EventSource, location: { href: "http://127.0.0.1/ui/cases/c1" } };
globalThis.EventSource = EventSource;
globalThis.document = { querySelector: function () { return marker; }, getElementById: function () { return shown; },
  activeElement: null, body: { setAttribute: function () {} } };
globalThis.setTimeout = function (f) { timers.push(f); return timers.length; };
function runTimers() { var ts = timers; timers = []; ts.forEach(function (f) { f(); }); }
function check(ok, msg) { if (!ok) { console.log("FAIL " + msg); process.exitCode = 1; } }
function settle() { return new Promise(function (r) { setImmediate(r); }); }

eval(require("fs").readFileSync(0, "utf8"));

(async function () {

check(opened.length === 1, "the page opened " + opened.length + " streams, want 1");
var first = opened[0];
// A broken connection: the browser reconnects by itself.
first.fire("error");
runTimers();
check(opened.length === 1 && fetched === 0, "a stream the browser reconnects was opened again by the script, or the page loaded again");
check(first.url.indexOf("state=s1") >= 0, "the stream was opened at " + first.url + ", want the page's state s1");
// A refused stream (503): the browser closed it. The node has moved on
// meanwhile, and the page loads content rendered from s2.
pageState = "s2";
first.readyState = 2;
first.fire("error");
await settle();
runTimers();
check(opened.length === 2, "a stream the node refused was not opened again (" + opened.length + " opened)");
check(fetched === 1, "the page was loaded again " + fetched + " times after the stream was refused, want 1");
var want = first.url.replace("state=s1", "state=s2");
check(opened.length < 2 || opened[1].url === want, "the stream was opened again at " + (opened[1] || {}).url + ", want " + want);
// Refused again: opened again again.
if (opened.length === 2) {
  opened[1].readyState = 2;
  opened[1].fire("error");
  await settle();
  runTimers();
  check(opened.length === 3, "a stream refused twice was not opened a third time");
}
})();
`
	cmd := exec.Command(nodeJS, "-e", harness)
	cmd.Stdin = strings.NewReader(string(script))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "FAIL") {
		t.Errorf("app.js under Node.js: %v\n%s", err, out)
	}
}
