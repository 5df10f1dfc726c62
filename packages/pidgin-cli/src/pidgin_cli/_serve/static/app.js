// pidgin serve: live updates. Served from /static (the page's CSP forbids inline script).
// Every value from a log is set with textContent, never parsed as HTML.
"use strict";

function refreshMain(main) {
  const every = Number(main.dataset.refresh);
  const tick = async () => {
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return setTimeout(tick, every);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("main");
      if (!fresh) return setTimeout(tick, every);
      main.replaceChildren(...Array.from(fresh.childNodes, (n) => document.importNode(n, true)));
      if (fresh.dataset.refresh) setTimeout(tick, every);
      else delete main.dataset.refresh;
    } catch (error) {
      setTimeout(tick, every * 2);
    }
  };
  setTimeout(tick, every);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function score(value, completed) {
  return completed && value !== null ? Number(value).toFixed(2) : completed ? "-" : "…";
}

function turnHeader(box, turn) {
  let header = document.getElementById("t" + turn.turn);
  if (!header) {
    header = element("h3", "turn", "Turn " + turn.turn + " ");
    header.id = "t" + turn.turn;
    header.dataset.turn = String(turn.turn);
    header.appendChild(element("span", "conv", ""));
    box.appendChild(header);
  }
  header.querySelector(".conv").textContent = "convergence " + score(turn.convergence, turn.completed);
}

function messageNode(message) {
  const side = message.agent_id === "agent_a" ? "a" : message.agent_id === "agent_b" ? "b" : "x";
  const article = element("article", "msg side-" + side);
  article.id = "m" + message.index;
  article.dataset.index = String(message.index);
  const who = element("div", "who");
  who.appendChild(element("span", "name", message.name));
  who.appendChild(document.createTextNode(" "));
  who.appendChild(element("span", "turnno", "turn " + message.turn));
  who.appendChild(document.createTextNode(" "));
  who.appendChild(element("span", "tokens",
    message.prompt_tokens + " in · " + message.completion_tokens + " out"));
  article.appendChild(who);
  if (message.thinking) {
    const details = element("details", "thinking");
    const tokens = message.thinking_tokens ? " (" + message.thinking_tokens + " tokens)" : "";
    details.appendChild(element("summary", "", "Thinking" + tokens));
    details.appendChild(element("div", "text", message.thinking));
    article.appendChild(details);
  }
  article.appendChild(element("div", "text", message.content));
  return article;
}

function follow(box) {
  const url = box.dataset.stream + "?after=" + encodeURIComponent(box.dataset.after);
  const source = new EventSource(url);
  const nearBottom = () => window.innerHeight + window.scrollY >= document.body.offsetHeight - 80;
  source.addEventListener("turn", (event) => turnHeader(box, JSON.parse(event.data)));
  source.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (document.getElementById("m" + message.index)) return;
    const stick = nearBottom();
    if (message.turn > 0 && !document.getElementById("t" + message.turn)) {
      turnHeader(box, { turn: message.turn, convergence: null, completed: false });
    }
    box.appendChild(messageNode(message));
    box.dataset.after = String(message.index + 1);
    if (stick) window.scrollTo(0, document.body.scrollHeight);
  });
  source.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    const done = document.getElementById("turns-done");
    if (done) done.textContent = String(status.turns_completed);
    const holder = document.getElementById("conv-status");
    if (holder) holder.replaceChildren(element("span", "status status-" + status.status, status.status));
  });
  source.addEventListener("end", () => {
    source.close();
    box.dataset.ended = "true";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const main = document.getElementById("main");
  if (main && main.dataset.refresh) refreshMain(main);
  const box = document.getElementById("transcript");
  if (box && box.dataset.ended !== "true") follow(box);
});
