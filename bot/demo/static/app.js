// The training room's page: people on the left, the chosen person's chat on
// the right, drawn from Telegram's own message fields; changes arrive as
// server-sent events. Plain JavaScript, nothing from the internet.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { people: [], current: null, replyTo: null, chat: null, autoplay: {} };

async function api(path, body) {
  const init = body === undefined ? {} : body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  if (!response.ok) {
    const why = await response.text();
    toast(why || "Permintaan gagal.", false);
    throw new Error(why);
  }
  return response.json();
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Telegram's entities (UTF-16 offsets, as JavaScript strings count) as HTML.
const TAGS = {
  bold: ["<b>", "</b>"], italic: ["<i>", "</i>"], underline: ["<u>", "</u>"],
  strikethrough: ["<s>", "</s>"], code: ["<code>", "</code>"], pre: ["<pre>", "</pre>"],
  blockquote: ["<blockquote>", "</blockquote>"], expandable_blockquote: ["<blockquote>", "</blockquote>"],
  spoiler: ['<span class="spoiler">', "</span>"],
};
function openTag(e) {
  if (e.type === "text_link") {
    const safe = /^(https?:|tg:|mailto:)/i.test(e.url || "") ? e.url : "#";
    return `<a href="${escapeHtml(safe)}" target="_blank" rel="noopener">`;
  }
  return (TAGS[e.type] || ["", ""])[0];
}
function closeTag(e) { return e.type === "text_link" ? "</a>" : (TAGS[e.type] || ["", ""])[1]; }

function renderEntities(text, entities) {
  if (!text) return "";
  const sorted = [...(entities || [])].sort((a, b) => a.offset - b.offset || b.length - a.length);
  let out = "";
  const open = [];
  let next = 0;
  for (let i = 0; i <= text.length; i++) {
    for (let k = open.length - 1; k >= 0; k--) {
      if (open[k].offset + open[k].length === i) { out += closeTag(open[k]); open.splice(k, 1); }
    }
    while (next < sorted.length && sorted[next].offset === i) {
      out += openTag(sorted[next]); open.push(sorted[next]); next++;
    }
    if (i < text.length) out += escapeHtml(text[i]);
  }
  return out;
}

function initials(name) {
  const words = name.replace(/^(Drs\.|Dr\.|Ir\.)\s*/, "").split(/\s+/);
  return (words[0][0] + (words[1] ? words[1][0] : "")).toUpperCase();
}
const COLORS = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];

function renderPeople() {
  const nav = $("#people");
  nav.innerHTML = "";
  for (const p of state.people) {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "person" + (p.id === state.current ? " active" : "");
    item.dataset.id = p.id;
    item.innerHTML = `
      <span class="avatar" style="background:${COLORS[p.id % COLORS.length]}">${escapeHtml(initials(p.name))}</span>
      <span class="info">
        <span class="name">${escapeHtml(p.name)}${p.manual ? '<span class="tag" title="Diperankan oleh Anda">Anda</span>' : ""}</span>
        <span class="role">${escapeHtml(p.role + (p.unit ? " · " + p.unit : ""))}</span>
        <span class="last">${escapeHtml(p.last || "")}</span>
      </span>
      ${p.unread && p.id !== state.current ? `<span class="badge" title="Pesan belum dibaca">${p.unread}</span>` : ""}`;
    item.addEventListener("click", () => choose(p.id));
    nav.appendChild(item);
  }
}

function renderAutoplay() {
  const a = state.autoplay;
  const button = $("#autoplay");
  button.disabled = !a.available || a.state === "done";
  button.title = a.available ? "Jalankan seluruh SOP dengan contoh berkas" : a.why;
  button.textContent = { playing: "⏸ Jeda", paused: "▶ Lanjutkan", done: "✔ Selesai" }[a.state] || "▶ Putar otomatis";
  $("#status").textContent = a.state === "idle" ? "" : "Putar otomatis: " + a.status;
  const head = $("#takeover");
  const active = a.state === "playing" || a.state === "paused";
  head.hidden = !active || state.current === null;
  const me = state.people.find((p) => p.id === state.current);
  head.textContent = me && me.manual ? "🤖 Serahkan ke putar otomatis" : "🎮 Ambil alih orang ini";
}

async function loadState() {
  const s = await api("/api/state");
  state.people = s.people;
  state.autoplay = s.autoplay;
  $("#clock").textContent = "🕘 " + s.clock;
  const speed = $("#speed");
  if (!speed.options.length) {
    for (const f of s.speeds) speed.add(new Option(f === 1 ? "1× (waktu nyata)" : `${f}×`, f));
  }
  if (document.activeElement !== speed) speed.value = String(s.speed);
  renderPeople();
  renderAutoplay();
}

function dayOf(seconds) {
  return new Date(seconds * 1000).toLocaleDateString("id-ID", { weekday: "long", day: "numeric", month: "long", timeZone: "Asia/Jakarta" });
}
function timeOf(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString("id-ID", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Jakarta" });
}

function bubbleFor(group) {
  const first = group[0];
  const last = group[group.length - 1];
  const msg = document.createElement("div");
  msg.className = "msg" + (first.mine ? " mine" : "");
  msg.dataset.id = first.id;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  let html = "";
  if (first.reply_to) html += `<div class="reply-quote">↪ ${escapeHtml(first.reply_to.text || "pesan")}</div>`;
  const photos = group.filter((m) => m.photo);
  if (photos.length) {
    html += `<div class="photos${photos.length === 1 ? " single" : ""}">` +
      photos.map((m) => `<a href="${m.photo.url}" target="_blank"><img src="${m.photo.url}" alt="Foto"></a>`).join("") + "</div>";
  }
  for (const m of group.filter((g) => g.document)) {
    const size = m.document.size ? `${(m.document.size / 1024).toFixed(1)} KB` : "";
    html += `<a class="doc" href="${m.document.url}" download="${escapeHtml(m.document.name)}" title="Unduh">
      <span class="icon">📄</span><span><span class="doc-name">${escapeHtml(m.document.name)}</span><br>
      <span class="doc-size">${size} · unduh</span></span></a>`;
  }
  for (const m of group) {
    if (m.text) html += `<div class="text">${renderEntities(m.text, m.entities)}</div>`;
    else if (m.caption) html += `<div class="text">${renderEntities(m.caption, m.caption_entities)}</div>`;
  }
  html += `<div class="meta">${last.edited ? "diedit " : ""}${last.date ? timeOf(last.date) : ""}</div>`;
  bubble.innerHTML = html;
  const reply = document.createElement("button");
  reply.type = "button";
  reply.className = "reply-btn";
  reply.title = "Balas pesan ini";
  reply.textContent = "↩";
  reply.addEventListener("click", () => startReply(last));
  bubble.appendChild(reply);
  bubble.querySelectorAll(".spoiler").forEach((s) => s.addEventListener("click", () => s.classList.add("open")));
  msg.appendChild(bubble);
  const rows = group.flatMap((m) => m.keyboard.map((row) => ({ row, m })));
  if (rows.length) {
    const kb = document.createElement("div");
    kb.className = "keyboard";
    for (const { row, m } of rows) {
      const line = document.createElement("div");
      line.className = "kb-row";
      for (const b of row) {
        let el;
        if (b.url) {
          el = document.createElement("a");
          el.href = b.url; el.target = "_blank"; el.rel = "noopener";
        } else {
          el = document.createElement("button");
          el.type = "button";
          el.addEventListener("click", () => press(m.id, b.callback_data));
        }
        el.className = "kb-btn";
        el.textContent = b.text;
        line.appendChild(el);
      }
      kb.appendChild(line);
    }
    msg.appendChild(kb);
  }
  return msg;
}

function renderChat(chat) {
  const box = $("#messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.innerHTML = "";
  if (!chat.messages.length) {
    box.innerHTML = '<p class="hint">Belum ada pesan. Tulis <code>/start</code> atau <code>/tugas</code>.</p>';
  }
  let day = "";
  for (let i = 0; i < chat.messages.length; i++) {
    const m = chat.messages[i];
    const group = [m];
    while (m.album && i + 1 < chat.messages.length && chat.messages[i + 1].album === m.album) group.push(chat.messages[++i]);
    const thisDay = m.date ? dayOf(m.date) : "";
    if (thisDay && thisDay !== day) {
      day = thisDay;
      const d = document.createElement("div");
      d.className = "day";
      d.textContent = day;
      box.appendChild(d);
    }
    box.appendChild(bubbleFor(group));
  }
  if (atBottom || state.scrollDown) box.scrollTop = box.scrollHeight;
  state.scrollDown = false;
}

async function loadChat() {
  if (state.current === null) return;
  const id = state.current;
  const chat = await api(`/api/chats/${id}`);
  if (id !== state.current) return;
  state.chat = chat;
  $("#chat-name").textContent = chat.name;
  $("#chat-role").textContent = chat.role + (chat.unit ? " · " + chat.unit : "");
  // The person's command menu, as Telegram offers it when "/" is typed.
  const menu = $("#commands");
  menu.innerHTML = "";
  for (const c of chat.commands) menu.appendChild(new Option(c.description, "/" + c.command));
  renderChat(chat);
  await api(`/api/chats/${id}/read`, {});
}

async function choose(id) {
  state.current = id;
  state.scrollDown = true;
  cancelReply();
  $("#app").className = "show-chat";
  $("#text").disabled = false;
  $("#send").disabled = false;
  renderPeople();
  renderAutoplay();
  await loadChat();
  $("#text").focus();
}

function startReply(m) {
  state.replyTo = m.id;
  $("#replying-text").textContent = "Membalas: " + ((m.text || m.caption || (m.document && m.document.name) || "foto").split("\n")[0]);
  $("#replying").hidden = false;
  $("#text").focus();
}
function cancelReply() { state.replyTo = null; $("#replying").hidden = true; }

async function press(messageId, data) {
  await api(`/api/chats/${state.current}/press`, { message_id: messageId, data });
}

let toastTimer = null;
function toast(text, alert) {
  const t = $("#toast");
  t.textContent = text;
  t.className = alert ? "alert" : "";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, alert ? 6000 : 3500);
}
$("#toast").addEventListener("click", () => { $("#toast").hidden = true; });

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#text");
  const text = input.value.trim();
  if (!text || state.current === null) return;
  input.value = "";
  const reply = state.replyTo;
  cancelReply();
  state.scrollDown = true;
  await api(`/api/chats/${state.current}/text`, { text, reply_to: reply });
});

$("#file").addEventListener("change", async () => {
  const input = $("#file");
  if (!input.files.length || state.current === null) return;
  const form = new FormData();
  for (const f of input.files) form.append("files", f, f.name);
  if (state.replyTo) form.append("reply_to", String(state.replyTo));
  const caption = $("#text").value.trim();
  if (caption) form.append("caption", caption);
  $("#text").value = "";
  cancelReply();
  input.value = "";
  state.scrollDown = true;
  await api(`/api/chats/${state.current}/upload`, form);
});

$("#reply-cancel").addEventListener("click", cancelReply);
$("#back").addEventListener("click", () => { $("#app").className = "show-list"; });
$("#speed").addEventListener("change", async () => {
  await api("/api/speed", { factor: Number($("#speed").value) });
});
$("#autoplay").addEventListener("click", async () => {
  const s = state.autoplay.state;
  await api("/api/autoplay", { action: s === "playing" ? "pause" : s === "paused" ? "resume" : "start" });
  await loadState();
});
$("#takeover").addEventListener("click", async () => {
  const me = state.people.find((p) => p.id === state.current);
  await api(`/api/chats/${state.current}/takeover`, { on: !(me && me.manual) });
  await loadState();
});

// Changes as they happen: a chat, the state, the clock.
let chatTimer = null;
let stateTimer = null;
function later(kind, fn, ms) {
  if (kind === "chat") { clearTimeout(chatTimer); chatTimer = setTimeout(fn, ms); }
  else { clearTimeout(stateTimer); stateTimer = setTimeout(fn, ms); }
}
function listen() {
  const events = new EventSource("/api/events");
  events.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    if (ev.kind === "clock") { $("#clock").textContent = "🕘 " + ev.clock; return; }
    if (ev.kind === "answer") {
      if (ev.chat === state.current && ev.text) toast(ev.text, ev.show_alert);
      return;
    }
    if ((ev.kind === "message" || ev.kind === "edit") && ev.chat === state.current) later("chat", loadChat, 60);
    later("state", loadState, 200);
  };
  events.onopen = () => { loadState(); loadChat(); };
}

loadState();
listen();
