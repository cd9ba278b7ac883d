// memex web page: sign in with a token (kept in this tab's sessionStorage), then chat: a list of
// your conversations, the open one's questions and answers (streamed), each answer's numbered
// sources and evidence, follow-ups that continue the open conversation. Everything from the
// server (answers, sources, titles, notes) is inserted as text (textContent), never as HTML.
"use strict";

const KEY = "memex-token";
const OPEN_KEY = "memex-conversation"; // the open conversation, reopened after a reload
const NARROW = window.matchMedia("(max-width: 48rem)");
const $ = (id) => document.getElementById(id);

let current = null; // the open conversation's id; null: the next question starts one
let currentTitle = "";
let busy = false;

function token() {
  return sessionStorage.getItem(KEY);
}

function headers(extra) {
  return Object.assign({ Authorization: "Bearer " + token() }, extra || {});
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
  } catch (e) {
    /* not JSON */
  }
  return "the server answered " + response.status;
}

class SignedOut extends Error {}

// A JSON API call; a 401 signs out (the token expired or was revoked) and throws SignedOut.
async function api(path, options) {
  const init = Object.assign({}, options || {});
  init.headers = headers(init.json !== undefined ? { "Content-Type": "application/json" } : {});
  if (init.json !== undefined) init.body = JSON.stringify(init.json);
  delete init.json;
  const response = await fetch(path, init);
  if (response.status === 401) {
    const message = await errorText(response);
    signOut();
    $("sign-in-error").textContent = message;
    throw new SignedOut(message);
  }
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

// -- signing in and out ------------------------------------------------------------------------

function show(signedIn, name) {
  $("sign-in").hidden = signedIn;
  $("chat").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("toggle-list").hidden = !signedIn;
  $("skip").hidden = !signedIn;
  $("who").textContent = signedIn ? "Signed in as " + name : "";
  if (signedIn) $("question").focus();
  else $("token").focus();
}

async function signIn(candidate) {
  sessionStorage.setItem(KEY, candidate);
  const response = await fetch("api/status", { headers: headers() });
  if (!response.ok) {
    sessionStorage.removeItem(KEY);
    $("sign-in-error").textContent = "Sign-in failed: " + (await errorText(response));
    show(false);
    return;
  }
  const status = await response.json();
  $("sign-in-error").textContent = "";
  show(true, status.principal);
  const listed = await loadList();
  const remembered = sessionStorage.getItem(OPEN_KEY);
  if (remembered && listed.some((c) => c.id === remembered)) await openConversation(remembered, false);
  else startNew(false);
}

function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(OPEN_KEY);
  $("token").value = "";
  $("conversations").replaceChildren();
  startNew(false);
  show(false);
}

// -- the conversation list ---------------------------------------------------------------------

function when(seconds) {
  try {
    return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    return "";
  }
}

async function loadList() {
  $("list-error").textContent = "";
  let listed = [];
  try {
    listed = (await api("api/conversations")).conversations;
  } catch (error) {
    if (!(error instanceof SignedOut)) $("list-error").textContent = "Could not list conversations: " + error.message;
    return [];
  }
  $("conversations").replaceChildren(
    ...listed.map((conversation) => {
      const item = el("li");
      const button = el("button", "conversation");
      button.type = "button";
      button.dataset.id = conversation.id;
      button.append(el("span", "title", conversation.title), el("span", "when", when(conversation.updated)));
      if (conversation.id === current) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => openConversation(conversation.id, true));
      item.append(button);
      return item;
    }),
  );
  $("list-empty").hidden = listed.length > 0;
  const mine = listed.find((c) => c.id === current);
  if (mine) setHead(mine.title);
  return listed;
}

function markCurrent() {
  for (const button of $("conversations").querySelectorAll("button.conversation")) {
    if (button.dataset.id === current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function setHead(title) {
  currentTitle = title || "";
  $("conversation-title").textContent = current ? currentTitle : "New conversation";
  $("rename-conversation").hidden = !current;
  $("delete-conversation").hidden = !current;
  if (current) {
    $("rename-conversation").setAttribute("aria-label", "Rename this conversation");
    $("delete-conversation").setAttribute("aria-label", "Delete this conversation");
  }
}

function setCurrent(id, title) {
  current = id;
  if (id) sessionStorage.setItem(OPEN_KEY, id);
  else sessionStorage.removeItem(OPEN_KEY);
  setHead(title);
  markCurrent();
}

function closeListOnPhone() {
  if (NARROW.matches) setListOpen(false);
}

function setListOpen(open) {
  $("sidebar").classList.toggle("open", open);
  $("toggle-list").setAttribute("aria-expanded", open ? "true" : "false");
}

function startNew(focus) {
  setCurrent(null, "");
  $("turns").replaceChildren();
  $("state").textContent = "";
  closeListOnPhone();
  if (focus) $("question").focus();
}

async function openConversation(id, focus) {
  $("state").textContent = "Opening…";
  let conversation;
  try {
    conversation = await api("api/conversations/" + encodeURIComponent(id));
  } catch (error) {
    if (error instanceof SignedOut) return;
    $("state").textContent = "Could not open the conversation: " + error.message;
    await loadList();
    return;
  }
  setCurrent(conversation.id, conversation.title);
  $("turns").replaceChildren(...conversation.turns.map(storedTurn));
  $("state").textContent = "";
  closeListOnPhone();
  if (focus) $("question").focus();
}

async function deleteConversation() {
  if (!current) return;
  if (!window.confirm("Delete the conversation “" + currentTitle + "”? Its questions and answers are gone for good.")) {
    return;
  }
  try {
    await api("api/conversations/" + encodeURIComponent(current), { method: "DELETE" });
  } catch (error) {
    if (!(error instanceof SignedOut)) $("state").textContent = "Could not delete it: " + error.message;
    return;
  }
  startNew(false);
  await loadList();
  $("state").textContent = "Conversation deleted.";
  $("question").focus();
}

async function renameConversation() {
  if (!current) return;
  const title = window.prompt("A new title for this conversation", currentTitle);
  if (title === null || !title.trim()) return;
  try {
    const renamed = await api("api/conversations/" + encodeURIComponent(current), {
      method: "PATCH",
      json: { title: title },
    });
    setHead(renamed.title);
  } catch (error) {
    if (!(error instanceof SignedOut)) $("state").textContent = "Could not rename it: " + error.message;
    return;
  }
  await loadList();
  $("conversation-title").focus();
}

// -- turns: a question, notes, the answer, its sources and evidence ----------------------------

function whereOf(citation) {
  let text = citation.source;
  if (citation.section) text += ", " + citation.section;
  if (citation.page !== null && citation.page !== undefined) text += ", page " + citation.page;
  return text;
}

async function showSource(citation, item, button) {
  const existing = item.querySelector(".source-text");
  if (existing) {
    existing.remove();
    button.textContent = "show";
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const response = await fetch("api/sources/" + encodeURIComponent(citation.source), { headers: headers() });
  const block = el("div", "source-text");
  if (response.ok) {
    const body = await response.json();
    block.textContent = body.chunks.map((chunk) => chunk.text).join("\n\n");
  } else {
    block.textContent = await errorText(response);
  }
  item.append(block);
  button.textContent = "hide";
  button.setAttribute("aria-expanded", "true");
}

function newTurn(question) {
  const turn = el("article", "turn");
  const asked = el("div", "question");
  asked.append(el("span", "visually-hidden", "You asked: "), el("span", "text", question));
  const notes = el("div", "notes");
  const answer = el("div", "answer");
  const extra = el("div", "extra");
  turn.append(asked, notes, answer, extra);
  return { turn, notes, answer, extra, searched: false };
}

function addNote(parts, text) {
  if (text.startsWith("Searched:")) {
    if (parts.searched) return;
    parts.searched = true;
  }
  parts.notes.append(el("p", "note", text));
}

function renderAnswer(parts, answer) {
  parts.answer.textContent = answer.answer;
  const extra = [];
  if (answer.citations.length) {
    const box = el("details", "sources");
    box.open = true;
    box.append(el("summary", null, "Sources (" + answer.citations.length + ")"));
    const list = el("ol");
    for (const citation of answer.citations) {
      const item = el("li");
      item.value = citation.n;
      const button = el("button", "quiet small", "show");
      button.type = "button";
      button.setAttribute("aria-expanded", "false");
      button.setAttribute("aria-label", "Show the text of source " + citation.n);
      button.addEventListener("click", () => showSource(citation, item, button));
      item.append(el("span", "source", whereOf(citation)), button);
      list.append(item);
    }
    box.append(list);
    extra.push(box);
  }
  if (answer.evidence.length) {
    const box = el("details", "evidence");
    box.append(el("summary", null, "Evidence (" + answer.evidence.length + ")"));
    const list = el("ul");
    for (const item of answer.evidence) list.append(el("li", null, "[" + item.n + "] " + item.sentence));
    box.append(list);
    extra.push(box);
  }
  parts.extra.replaceChildren(...extra);
}

function storedTurn(stored) {
  const parts = newTurn(stored.question);
  if (stored.standalone && stored.standalone !== stored.question) addNote(parts, "Searched: " + stored.standalone);
  if (stored.withheld) {
    parts.turn.classList.add("withheld");
    parts.answer.classList.add("notice");
    parts.answer.textContent = "Answer " + stored.withheld;
  } else {
    renderAnswer(parts, stored);
  }
  return parts.turn;
}

// -- asking ------------------------------------------------------------------------------------

function handle(parts, name, data) {
  if (name === "queued") {
    $("state").textContent = "Waiting for the model…";
  } else if (name === "note") {
    addNote(parts, data.text);
  } else if (name === "token") {
    $("state").textContent = "Answering…";
    parts.answer.textContent += data.text;
  } else if (name === "answer") {
    $("state").textContent = "";
    if (data.asked !== undefined && data.question) addNote(parts, "Searched: " + data.question);
    if (data.dates_note) addNote(parts, data.dates_note);
    renderAnswer(parts, data);
    if (data.conversation && parts.turn.isConnected && data.conversation !== current) {
      setCurrent(data.conversation, "");
    }
    loadList();
  } else if (name === "error") {
    parts.answer.classList.add("error");
    parts.answer.textContent = "The answer failed: " + data.error;
    $("state").textContent = "The answer failed.";
  }
}

async function ask(question) {
  busy = true;
  $("ask-button").disabled = true;
  const parts = newTurn(question);
  $("turns").setAttribute("aria-busy", "true");
  $("turns").append(parts.turn);
  parts.turn.scrollIntoView({ block: "nearest" });
  $("state").textContent = "Asking…";
  try {
    const response = await fetch("api/ask", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ question: question, conversation: current || "new", stream: true }),
    });
    if (response.status === 401) {
      const message = await errorText(response);
      signOut();
      $("sign-in-error").textContent = message;
      return;
    }
    if (!response.ok) {
      const wait = response.headers.get("Retry-After");
      const message = (await errorText(response)) + (wait ? " (try again in " + wait + " s)" : "");
      parts.answer.classList.add("error");
      parts.answer.textContent = message;
      $("state").textContent = message;
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (data.length) handle(parts, name, JSON.parse(data.join("\n")));
      }
    }
  } catch (error) {
    $("state").textContent = "The connection failed: " + error.message;
  } finally {
    busy = false;
    $("ask-button").disabled = false;
    $("turns").setAttribute("aria-busy", "false");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  $("new-conversation").addEventListener("click", () => startNew(true));
  $("delete-conversation").addEventListener("click", deleteConversation);
  $("rename-conversation").addEventListener("click", renameConversation);
  $("toggle-list").addEventListener("click", () => setListOpen(!$("sidebar").classList.contains("open")));
  $("sidebar").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && NARROW.matches && $("sidebar").classList.contains("open")) {
      setListOpen(false);
      $("toggle-list").focus();
    }
  });
  $("skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("question").focus();
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question || busy) return;
    $("question").value = "";
    ask(question);
  });
  if (token()) signIn(token());
  else show(false);
});
