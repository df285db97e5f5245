// The "virtual card" of the demo: a JSON file holding the test authentication certificate and
// its key (PKCS#8). WebCrypto signs the server's challenge with it (RSASSA-PKCS1-v1_5, SHA-256),
// as the card's chip would sign it with the real key, which never leaves the card.
(function () {
  "use strict";
  var form = document.getElementById("card-login");
  if (!form) { return; }
  var status = document.getElementById("card-status");
  // The page's language: the messages come from the form's data-msg-* attributes.
  function msg(name, fallback) { return form.getAttribute("data-msg-" + name) || fallback; }

  function der(base64) {
    var text = atob(base64.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
    return bytes.buffer;
  }

  function b64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text);
  }

  form.addEventListener("submit", function (event) {
    if (form.dataset.signed === "1") { return; }
    event.preventDefault();
    var file = document.getElementById("virtual-card").files[0];
    if (!file) { status.textContent = msg("choose", "カードのファイルを選んでください。"); return; }
    status.textContent = msg("signing", "署名しています…");
    file.text().then(function (text) {
      var card = JSON.parse(text);
      return crypto.subtle.importKey("pkcs8", der(card.authentication_key),
        { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]).then(function (key) {
        var challenge = document.getElementById("challenge").value;
        return crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, new TextEncoder().encode(challenge));
      }).then(function (signature) {
        document.getElementById("certificate").value = card.authentication_certificate;
        document.getElementById("signature").value = b64(signature);
        form.dataset.signed = "1";
        form.submit();
      });
    }).catch(function () {
      status.textContent = msg("unreadable", "カードを読めませんでした。");
    });
  });
}());
