// Passkeys for the Vultron dashboard: a button with data-passkey="login"
// completes a login's second step with a passkey, one with
// data-passkey="register" adds a passkey to the account. The node gives
// the WebAuthn options as JSON (binary members in base64url), checks the
// authenticator's answer, and answers where to go next. Each request
// carries the session's CSRF token in X-CSRF-Token.
(function () {
  "use strict";
  function b64u(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function ids(list) {
    return (list || []).map(function (c) { var d = Object.assign({}, c); d.id = unb64u(c.id); return d; });
  }
  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? "{}" : JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.error || ("the node answered " + r.status)); }
        return j;
      });
    });
  }
  function show(err) {
    var box = document.getElementById("passkey-error");
    if (box) { box.textContent = String(err && err.message || err); box.hidden = false; }
  }
  function login(btn) {
    var csrf = btn.getAttribute("data-csrf"), next = btn.getAttribute("data-next") || "/";
    return post("/login/passkey/begin", csrf).then(function (opts) {
      var pk = opts.publicKey;
      pk.challenge = unb64u(pk.challenge);
      pk.allowCredentials = ids(pk.allowCredentials);
      return navigator.credentials.get({ publicKey: pk });
    }).then(function (cred) {
      return post("/login/passkey/finish?next=" + encodeURIComponent(next), csrf, {
        id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
        authenticatorAttachment: cred.authenticatorAttachment || undefined,
        clientExtensionResults: cred.getClientExtensionResults(),
        response: {
          clientDataJSON: b64u(cred.response.clientDataJSON),
          authenticatorData: b64u(cred.response.authenticatorData),
          signature: b64u(cred.response.signature),
          userHandle: cred.response.userHandle ? b64u(cred.response.userHandle) : undefined
        }
      });
    });
  }
  function register(btn) {
    var csrf = btn.getAttribute("data-csrf");
    var nameBox = document.getElementById("passkey-name");
    var name = nameBox ? nameBox.value : "passkey";
    return post("/factor/passkey/begin", csrf).then(function (opts) {
      var pk = opts.publicKey;
      pk.challenge = unb64u(pk.challenge);
      pk.user.id = unb64u(pk.user.id);
      pk.excludeCredentials = ids(pk.excludeCredentials);
      return navigator.credentials.create({ publicKey: pk });
    }).then(function (cred) {
      return post("/factor/passkey/finish?name=" + encodeURIComponent(name), csrf, {
        id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
        authenticatorAttachment: cred.authenticatorAttachment || undefined,
        clientExtensionResults: cred.getClientExtensionResults(),
        response: {
          clientDataJSON: b64u(cred.response.clientDataJSON),
          attestationObject: b64u(cred.response.attestationObject),
          transports: cred.response.getTransports ? cred.response.getTransports() : []
        }
      });
    });
  }
  document.querySelectorAll("[data-passkey]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      if (!window.PublicKeyCredential) { show("This browser has no passkeys."); return; }
      btn.disabled = true;
      var run = btn.getAttribute("data-passkey") === "login" ? login : register;
      run(btn).then(function (j) { window.location.assign(j.redirect || "/"); })
        .catch(function (err) { btn.disabled = false; show(err); });
    });
  });
})();
