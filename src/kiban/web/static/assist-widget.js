/* Kiban assistant chat widget: vanilla JavaScript, no outside scripts, no innerHTML.
   Enhances the form on /assist/{lgcode}: questions are sent to /api/v1/assist/{lgcode}/ask and
   each answer is appended to the log (an aria-live region) using text nodes only, so nothing
   a user typed or an answer contains is ever parsed as HTML. Without JavaScript the form
   posts to the page and the server renders the answer. */
(function () {
  "use strict";
  var root = document.querySelector("[data-assist-lgcode]");
  if (!root) { return; }
  var lgcode = root.getAttribute("data-assist-lgcode");
  var form = root.querySelector("form");
  var input = root.querySelector("textarea");
  var log = root.querySelector("[role=log]");
  var button = form.querySelector("button");

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function post(path, body) {
    return fetch("/api/v1/assist/" + encodeURIComponent(lgcode) + path, {
      method: "POST", headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body), credentials: "omit"
    });
  }

  function feedback(ref, box) {
    var group = el("div", "", "assist-feedback");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "この回答は役に立ちましたか / Was this helpful?");
    group.appendChild(el("span", "役に立ちましたか / Helpful? "));
    [[true, "はい / Yes"], [false, "いいえ / No"]].forEach(function (choice) {
      var b = el("button", choice[1]);
      b.type = "button";
      b.addEventListener("click", function () {
        post("/feedback", {ref: ref, helpful: choice[0]}).then(function () {
          group.textContent = "";
          group.appendChild(el("span", "ご意見ありがとうございました / Thank you", "assist-thanks"));
        });
      });
      group.appendChild(b);
    });
    box.appendChild(group);
  }

  function show(result) {
    var box;
    if (result.status === "answered") {
      var a = result.answer;
      box = el("article", "", "assist-answer");
      if (result.note) { var note = el("p", result.note); note.lang = "en"; box.appendChild(note); }
      box.appendChild(el("h3", a.question));
      box.appendChild(el("p", a.text, "assist-text"));
      var source = "出典 / Source: " + a.municipality + "・" + a.ref +
        (a.department ? "・" + a.department : "") +
        (a.last_reviewed ? "・最終確認 " + a.last_reviewed : "");
      box.appendChild(el("p", source, "assist-source"));
      if (a.url && /^(https?:\/\/|\/)/.test(a.url)) {
        var link = el("a", "詳しくはこちら / More");
        link.href = a.url;
        box.appendChild(link);
      }
      feedback(a.ref, box);
    } else {
      box = el("div", "", "assist-handoff");
      box.appendChild(el("p", result.handoff.message));
      var inquiry = el("a", "お問い合わせ窓口 / Inquiry page");
      inquiry.href = /^(https?:\/\/|\/)/.test(result.handoff.url) ? result.handoff.url : "/";
      box.appendChild(inquiry);
    }
    log.appendChild(box);
  }

  function problem(body) {
    var box = el("div", "", "error assist-problem");
    box.setAttribute("role", "alert");
    box.appendChild(el("p", (body && body.title_ja) || "送信できませんでした。"));
    var en = el("p", (body && body.title_en) || "Could not send the question.");
    en.lang = "en";
    box.appendChild(en);
    log.appendChild(box);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value;
    var asked = el("p", question, "assist-question");
    asked.setAttribute("aria-label", "あなたの質問 / Your question");
    log.appendChild(asked);
    button.disabled = true;
    post("/ask", {question: question}).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) { show(body); input.value = ""; } else { problem(body); }
      });
    }).catch(function () { problem(null); }).then(function () {
      button.disabled = false;
      input.focus();
    });
  });
})();
