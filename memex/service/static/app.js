// memex web page: sign in with a token (kept in this tab's sessionStorage), ask, read the
// streamed answer and its numbered sources. Everything from the server is inserted as text
// (textContent), never as HTML.
"use strict";

const KEY = "memex-token";
const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(KEY);
}

function headers(extra) {
  return Object.assign({ Authorization: "Bearer " + token() }, extra || {});
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

function show(signedIn, name) {
  $("sign-in").hidden = signedIn;
  $("ask").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").textContent = signedIn ? "Signed in as " + name : "";
  if (signedIn) $("question").focus();
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
}

function signOut() {
  sessionStorage.removeItem(KEY);
  $("token").value = "";
  clearAnswer();
  show(false);
}

function clearAnswer() {
  $("answer").textContent = "";
  $("state").textContent = "";
  $("sources").replaceChildren();
  $("evidence").replaceChildren();
  $("sources-title").hidden = true;
  $("evidence-title").hidden = true;
}

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
    return;
  }
  const response = await fetch("api/sources/" + encodeURIComponent(citation.source), { headers: headers() });
  const block = document.createElement("div");
  block.className = "source-text";
  if (response.ok) {
    const body = await response.json();
    block.textContent = body.chunks.map((chunk) => chunk.text).join("\n\n");
  } else {
    block.textContent = await errorText(response);
  }
  item.append(block);
  button.textContent = "hide";
}

function render(answer) {
  $("answer").textContent = answer.answer;
  $("sources-title").hidden = answer.citations.length === 0;
  $("sources").replaceChildren(
    ...answer.citations.map((citation) => {
      const item = document.createElement("li");
      item.value = citation.n;
      const where = document.createElement("span");
      where.className = "source";
      where.textContent = whereOf(citation);
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "show";
      button.addEventListener("click", () => showSource(citation, item, button));
      item.append(where, button);
      return item;
    }),
  );
  $("evidence-title").hidden = answer.evidence.length === 0;
  $("evidence").replaceChildren(
    ...answer.evidence.map((item) => {
      const line = document.createElement("li");
      line.textContent = "[" + item.n + "] " + item.sentence;
      return line;
    }),
  );
}

function handle(name, data) {
  if (name === "queued") {
    $("state").textContent = "Waiting for the model…";
  } else if (name === "token") {
    $("state").textContent = "Answering…";
    $("answer").textContent += data.text;
  } else if (name === "answer") {
    $("state").textContent = "";
    render(data);
  } else if (name === "error") {
    $("state").textContent = "The answer failed: " + data.error;
  }
}

async function ask(question) {
  clearAnswer();
  $("ask-button").disabled = true;
  $("state").textContent = "Asking…";
  try {
    const response = await fetch("api/ask", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ question: question, stream: true }),
    });
    if (response.status === 401) {
      signOut();
      $("sign-in-error").textContent = await errorText(response);
      return;
    }
    if (!response.ok) {
      const wait = response.headers.get("Retry-After");
      $("state").textContent = (await errorText(response)) + (wait ? " (try again in " + wait + " s)" : "");
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
        if (data.length) handle(name, JSON.parse(data.join("\n")));
      }
    }
  } catch (error) {
    $("state").textContent = "The connection failed: " + error.message;
  } finally {
    $("ask-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (question) ask(question);
  });
  if (token()) signIn(token());
  else show(false);
});
