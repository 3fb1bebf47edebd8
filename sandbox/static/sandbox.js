// Sandbox page: talks to the Bot API test server's /_sim/ routes (the chat, as a Telegram
// client would) and to /sandbox/api/ (personas, mailbox, renewal sweep). No framework, no
// build step: the page is served as is.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  botUsername: "",
  personas: [],
  current: null,          // the persona whose chat is shown
  chatAbort: null,        // AbortController of the chat long poll
  chatGeneration: 0,      // which chat loop is the live one
  chatVersion: null,
  rendered: new Map(),    // message id -> {sig, el}
  revision: 0,            // bumped on each message drawn or redrawn (data-rev, for tests)
  seenAnswers: new Set(), // callback_query ids whose answer was shown
  answersPrimed: false,
  mails: [],
  mailVersion: null,
  seenMails: new Set(),
  mailsPrimed: false,
  selectedMail: null,
  mailView: "html",
  totpTimer: null,
};

// --- small helpers ----------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(url, body, signal) {
  const options = body === undefined ? { signal } : {
    method: "POST", signal,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(url, options);
  let payload;
  try { payload = await response.json(); } catch { payload = { ok: false, description: response.statusText }; }
  if (!payload.ok) throw new Error(payload.description || `erreur ${response.status}`);
  return payload.result;
}

const sim = (name, body) => call(`/_sim/${name}`, body);

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} o`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1).replace(".", ",")} Ko`;
  return `${(bytes / 1024 / 1024).toFixed(1).replace(".", ",")} Mo`;
}

function formatTime(unix) {
  return new Date(unix * 1000).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
}

function formatDateTime(iso) {
  return new Date(iso).toLocaleString("fr-FR", { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
}

let toastTimer = null;
function toast(text, alert = false) {
  const box = $("toast");
  box.textContent = text;
  box.classList.toggle("alert", alert);
  box.setAttribute("role", alert ? "alert" : "status");
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, alert ? 6000 : 3500);
}

// --- panels on narrow screens -------------------------------------------------------------

const PANELS = ["personas", "chat", "mail"];

function showPanel(name, focus = false) {
  for (const panel of PANELS) {
    $(`panel-${panel}`).classList.toggle("active", panel === name);
    $(`tab-${panel}`).setAttribute("aria-pressed", String(panel === name));
  }
  if (name === "mail") {
    $("mail-badge").hidden = true;
  }
  if (focus) {
    const target = name === "chat" ? $("composer-text") : $(`${name === "mail" ? "mail" : "personas"}-title`);
    if (target.tabIndex < 0 && target.tagName === "H2") target.tabIndex = -1;
    target.focus();
  }
}

const narrow = () => window.matchMedia("(max-width: 1099px)").matches;

// --- Telegram deep links --------------------------------------------------------------------

// A validation link is https://t.me/<bot>?start=<token>: in Telegram it opens the chat and
// sends "/start <token>"; here it does the same in the current persona's chat.
function deepLinkStart(href) {
  let url;
  try { url = new URL(href, window.location.href); } catch { return null; }
  if (url.hostname !== "t.me" && url.hostname !== "telegram.me") return null;
  const name = url.pathname.replace(/^\//, "").split("/")[0].toLowerCase();
  if (name !== state.botUsername.toLowerCase()) return null;
  const start = url.searchParams.get("start");
  return start === null ? "/start" : `/start ${start}`;
}

async function openLink(href) {
  const command = deepLinkStart(href);
  if (command !== null) {
    if (narrow()) showPanel("chat");
    await sendText(command);
    toast("Lien ouvert dans la discussion avec le bot.");
    $("composer-text").focus();
    return;
  }
  window.open(href, "_blank", "noopener");
}

function linkNode(href, text) {
  const a = el("a", { href, text, rel: "noopener", target: "_blank" });
  a.addEventListener("click", (event) => {
    event.preventDefault();
    openLink(href);
  });
  return a;
}

// --- message text with Telegram entities -------------------------------------------------

function entityNode(entity, text) {
  const inner = text.slice(entity.offset, entity.offset + entity.length);
  switch (entity.type) {
    case "bold": return el("strong");
    case "italic": return el("em");
    case "underline": return el("u");
    case "strikethrough": return el("s");
    case "spoiler": return el("span", { class: "spoiler", tabindex: "0" });
    case "code": return el("code");
    case "pre": return el("pre");
    case "blockquote": case "expandable_blockquote": return el("blockquote");
    case "text_link": return safeHref(entity.url) ? linkNode(entity.url, "") : el("span");
    case "url": return linkNode(/^[a-z]+:/i.test(inner) ? inner : `https://${inner}`, "");
    case "email": return el("a", { href: `mailto:${inner}` });
    case "bot_command": {
      const command = inner;
      return el("button", { type: "button", class: "link-button", onclick: () => sendText(command) });
    }
    default: return el("span");
  }
}

function safeHref(href) {
  return typeof href === "string" && /^(https?:|tg:|mailto:)/i.test(href);
}

function renderEntities(text, entities) {
  const sorted = [...(entities || [])].sort((a, b) => a.offset - b.offset || b.length - a.length);
  const build = (start, end, list) => {
    const fragment = document.createDocumentFragment();
    let position = start;
    for (let i = 0; i < list.length; i++) {
      const entity = list[i];
      if (entity.offset < position) continue; // overlapping: already drawn inside another
      const entityEnd = entity.offset + entity.length;
      fragment.append(text.slice(position, entity.offset));
      const nested = [];
      while (i + 1 < list.length && list[i + 1].offset < entityEnd) nested.push(list[++i]);
      const node = entityNode(entity, text);
      node.append(build(entity.offset, entityEnd, nested.filter((n) => n.offset + n.length <= entityEnd)));
      fragment.append(node);
      position = entityEnd;
    }
    fragment.append(text.slice(position, end));
    return fragment;
  };
  return build(0, text.length, sorted);
}

// --- chat rendering --------------------------------------------------------------------------

function inlineKeyboard(message) {
  const rows = message.reply_markup && message.reply_markup.inline_keyboard;
  if (!rows || !rows.length) return null;
  const box = el("div", { class: "inline-kb", role: "group", "aria-label": "Boutons du message" });
  rows.forEach((row, r) => {
    const line = el("div", { class: "kb-row" });
    row.forEach((button, c) => {
      const node = el("button", { type: "button", "data-kb": `${r}:${c}`, text: button.text });
      if (button.callback_data !== undefined) {
        node.addEventListener("click", () => press(message.id, button, node));
      } else if (button.url) {
        node.addEventListener("click", () => openLink(button.url));
        node.title = button.url;
      } else {
        node.disabled = true;
        node.title = "Bouton non pris en charge dans le bac à sable";
      }
      line.append(node);
    });
    box.append(line);
  });
  return box;
}

function documentNode(doc) {
  const isImage = (doc.mime_type || "").startsWith("image/");
  const name = doc.file_name || "document";
  const box = el("div", { class: "doc" },
    el("div", { class: "doc-icon", "aria-hidden": "true", text: isImage ? "IMG" : (name.split(".").pop() || "").slice(0, 4).toUpperCase() || "DOC" }),
    el("div", {},
      el("div", { class: "doc-name", text: name }),
      el("div", { class: "doc-size", text: `${formatSize(doc.file_size || 0)}${doc.mime_type ? ` · ${doc.mime_type}` : ""}` }),
      el("div", { class: "doc-links" },
        el("a", { href: doc.url, download: name, class: "doc-download", text: "Télécharger" }),
        el("a", { href: doc.url, target: "_blank", rel: "noopener", text: "Ouvrir" }))));
  if (!isImage) return box;
  const wrapper = document.createDocumentFragment();
  wrapper.append(el("img", { class: "photo", src: doc.url, alt: `Image ${name}` }), box);
  return wrapper;
}

function messageNode(message) {
  const who = message.from_bot ? "bot" : "user";
  const bubble = el("div", { class: "bubble" },
    el("span", { class: "visually-hidden", text: message.from_bot ? "Le bot : " : "Vous : " }));
  if (message.photo) {
    bubble.append(el("img", { class: "photo", src: message.photo.url, alt: message.from_bot ? "Image envoyée par le bot" : "Votre photo" }));
  }
  if (message.document) bubble.append(documentNode(message.document));
  if (message.contact) {
    bubble.append(el("div", { class: "contact", text: `Contact : ${message.contact.first_name || ""} ${message.contact.phone_number || ""}`.trim() }));
  }
  const text = message.plain_text ?? message.plain_caption;
  if (text) {
    const entities = message.plain_text != null ? message.entities : message.caption_entities;
    bubble.append(el("div", { class: "text" }, renderEntities(text, entities)));
  }
  bubble.append(el("div", { class: "meta" }, message.edited ? "modifié · " : "", formatTime(message.date)));
  return el("article", { class: `msg ${who}`, "data-id": String(message.id) }, bubble, inlineKeyboard(message));
}

function renderMessages(messages) {
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const focused = document.activeElement;
  let focusedKey = null;
  if (focused && list.contains(focused)) {
    const article = focused.closest("article.msg");
    if (article) focusedKey = { id: article.dataset.id, kb: focused.dataset.kb || null, label: focused.textContent };
  }
  const visible = messages.filter((m) => !m.deleted);
  const keep = new Set(visible.map((m) => String(m.id)));
  for (const [id, entry] of state.rendered) {
    if (!keep.has(id)) { entry.el.remove(); state.rendered.delete(id); }
  }
  let added = false;
  let previous = null;
  for (const message of visible) {
    const id = String(message.id);
    const sig = JSON.stringify(message);
    const entry = state.rendered.get(id);
    let node;
    if (entry && entry.sig === sig) {
      node = entry.el;
    } else {
      node = messageNode(message);
      node.dataset.rev = String(++state.revision);
      if (entry) entry.el.replaceWith(node); else added = true;
      state.rendered.set(id, { sig, el: node });
    }
    if (node.parentNode !== list || (previous ? previous.nextSibling !== node : list.firstElementChild !== node)) {
      if (previous) previous.after(node); else list.prepend(node);
    }
    previous = node;
  }
  $("chat-empty").hidden = visible.length > 0;
  if (!$("chat-empty").hidden && $("chat-empty").parentNode !== list) list.prepend($("chat-empty"));
  if (added || nearBottom) list.scrollTop = list.scrollHeight;
  restoreFocus(focusedKey);
}

// A pressed inline button is usually replaced by the bot's edit of its message; keyboard
// users would otherwise be thrown back to the top of the page.
function restoreFocus(focusedKey) {
  if (document.activeElement && document.activeElement !== document.body) return;
  const list = $("messages");
  if (focusedKey) {
    const article = list.querySelector(`article.msg[data-id="${focusedKey.id}"]`);
    const buttons = article ? [...article.querySelectorAll(".inline-kb button")] : [];
    const same = buttons.find((b) => b.textContent === focusedKey.label)
      || (focusedKey.kb && article.querySelector(`[data-kb="${focusedKey.kb}"]`));
    const first = article && article.querySelector(".inline-kb button");
    if (same || first) { (same || first).focus(); return; }
  }
  const lastButtons = [...list.querySelectorAll("article.msg.bot")].pop();
  const button = lastButtons && lastButtons.querySelector(".inline-kb button:not(:disabled)");
  if (button && focusedKey) { button.focus(); return; }
  if (focusedKey) $("composer-text").focus();
}

function renderReplyKeyboard(rows) {
  const box = $("reply-keyboard");
  const signature = JSON.stringify(rows || null);
  if (box.dataset.sig === signature) return;
  box.dataset.sig = signature;
  box.replaceChildren();
  box.hidden = !rows || !rows.length;
  if (box.hidden) return;
  for (const row of rows) {
    const line = el("div", { class: "kb-row" });
    for (const label of row) {
      line.append(el("button", {
        type: "button", text: label,
        onclick: async () => {
          try { await sim("tap_reply_button", { user_id: state.current.user_id, label }); }
          catch (error) { toast(error.message, true); }
          $("composer-text").focus();
        },
      }));
    }
    box.append(line);
  }
}

function renderCommands(commands) {
  const list = $("command-list");
  const signature = JSON.stringify(commands);
  if (list.dataset.sig === signature) return;
  list.dataset.sig = signature;
  list.replaceChildren(...commands.map((c) => el("li", {},
    el("button", {
      type: "button",
      onclick: () => { toggleMenu(false); sendText(`/${c.command}`); $("composer-text").focus(); },
    }, el("span", { class: "cmd", text: `/${c.command}` }), el("span", { class: "desc", text: c.description })))));
  $("menu-button").hidden = commands.length === 0;
}

function showAnswers(answers) {
  for (const answer of answers) {
    if (state.seenAnswers.has(answer.callback_query_id)) continue;
    state.seenAnswers.add(answer.callback_query_id);
    if (state.answersPrimed && answer.text) toast(answer.text, answer.show_alert);
  }
  state.answersPrimed = true;
}

function renderChat(chat) {
  if (chat.bot) {
    $("chat-title").textContent = chat.bot.first_name;
    $("chat-sub").textContent = `@${chat.bot.username} · vous êtes ${state.current.first_name}`;
  }
  renderMessages(chat.messages);
  renderReplyKeyboard(chat.reply_keyboard);
  renderCommands(chat.commands || []);
  showAnswers(chat.callback_answers || []);
}

// One loop per persona shown: selecting another persona starts a new generation. (Persona
// objects are replaced on each refresh of the TOTP codes, so they cannot tell loops apart.)
async function chatLoop(userId) {
  const generation = ++state.chatGeneration;
  let since = null;
  while (generation === state.chatGeneration) {
    const controller = new AbortController();
    state.chatAbort = controller;
    const query = new URLSearchParams({ user_id: userId, timeout: "25" });
    if (since !== null) query.set("since", since);
    try {
      const chat = await call(`/_sim/chat?${query}`, undefined, controller.signal);
      if (generation !== state.chatGeneration) return;
      renderChat(chat);
      since = chat.version;
    } catch (error) {
      if (error.name === "AbortError") return;
      // A drawing bug must show (tests watch page errors) without stopping the loop.
      if (!(error instanceof TypeError && /fetch/i.test(error.message))) setTimeout(() => { throw error; });
      await sleep(1500);
    }
  }
}

// --- chat actions ----------------------------------------------------------------------------

async function sendText(text) {
  if (!text.trim()) return;
  try { await sim("send_text", { user_id: state.current.user_id, text }); }
  catch (error) { toast(error.message, true); }
}

async function press(messageId, button, node) {
  node.setAttribute("aria-busy", "true");
  try {
    await sim("press", { user_id: state.current.user_id, button: button.callback_data, message_id: messageId });
  } catch (error) {
    node.removeAttribute("aria-busy");
    // The bot replaced this keyboard between drawing and pressing (as a Telegram client
    // would show a stale button): say so rather than the simulator's technical message.
    toast("Ce bouton n'est plus disponible : le bot vient de modifier ce message.", true);
  }
}

async function upload(kind, file) {
  const form = new FormData();
  form.append("user_id", String(state.current.user_id));
  const caption = $("composer-text").value.trim();
  if (caption) form.append("caption", caption);
  form.append("file", file, file.name);
  try {
    const response = await fetch(`/_sim/${kind === "photo" ? "send_photo" : "send_document"}`, { method: "POST", body: form });
    const payload = await response.json();
    if (!payload.ok) throw new Error(payload.description);
    $("composer-text").value = "";
    autosize();
  } catch (error) {
    toast(`Envoi impossible : ${error.message}`, true);
  }
}

function toggleMenu(open) {
  const menu = $("command-menu");
  const show = open ?? menu.hidden;
  menu.hidden = !show;
  $("menu-button").setAttribute("aria-expanded", String(show));
  if (show) {
    const first = menu.querySelector("button");
    if (first) first.focus();
  }
}

function autosize() {
  const box = $("composer-text");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 140)}px`;
}

// --- personas --------------------------------------------------------------------------------

function renderPersonas() {
  const fieldset = $("persona-list");
  const legend = fieldset.querySelector("legend");
  fieldset.replaceChildren(legend, ...state.personas.map((p) => {
    const input = el("input", { type: "radio", name: "persona", value: p.key, id: `persona-${p.key}` });
    input.checked = state.current && state.current.key === p.key;
    input.addEventListener("change", () => selectPersona(p.key));
    const role = p.role ? (p.role === "gestionnaire" ? "gestionnaire" : "superviseur") : "candidat";
    return el("label", { class: "persona-option", for: `persona-${p.key}` }, input,
      el("span", { class: "who" }, el("span", { text: p.label }), el("span", { class: "role", text: `Telegram ${p.user_id} · ${role}` })));
  }));
}

function selectPersona(key) {
  const persona = state.personas.find((p) => p.key === key);
  if (!persona || (state.current && persona.key === state.current.key && state.chatGeneration)) return;
  if (state.chatAbort) state.chatAbort.abort();
  state.current = persona;
  state.rendered.clear();
  state.seenAnswers.clear();
  state.answersPrimed = false;
  const list = $("messages");
  list.replaceChildren($("chat-empty"));
  $("reply-keyboard").dataset.sig = "";
  $("command-list").dataset.sig = "";
  toggleMenu(false);
  try { localStorage.setItem("sandbox-persona", key); } catch { /* private mode */ }
  renderPersonas();
  renderPersonaCard();
  chatLoop(persona.user_id);
}

function renderPersonaCard() {
  const persona = state.current;
  $("persona-description").textContent = persona.description;
  $("totp").hidden = !persona.totp;
  tickTotp();
}

function tickTotp() {
  const persona = state.current;
  if (!persona || !persona.totp) return;
  const { code, remaining, interval } = persona.totp;
  $("totp-code").textContent = `${code.slice(0, 3)} ${code.slice(3)}`;
  $("totp-remaining").textContent = String(remaining);
  $("totp-bar-fill").style.width = `${(remaining / interval) * 100}%`;
}

async function refreshState() {
  const data = await call("/sandbox/api/state");
  state.botUsername = data.bot_username;
  const currentKey = state.current ? state.current.key : null;
  state.personas = data.personas;
  if (currentKey) state.current = state.personas.find((p) => p.key === currentKey) || state.current;
  if (!$("sweep-date").value) $("sweep-date").value = data.today;
  return data;
}

// Codes are computed by the server (the secret never reaches the page); the countdown runs
// here and the codes are fetched again when it reaches zero.
function startTotpClock() {
  clearInterval(state.totpTimer);
  state.totpTimer = setInterval(async () => {
    let expired = false;
    for (const persona of state.personas) {
      if (!persona.totp) continue;
      persona.totp.remaining -= 1;
      if (persona.totp.remaining <= 0) expired = true;
    }
    if (expired) {
      try {
        const previous = state.current;
        await refreshState();
        if (previous) state.current = state.personas.find((p) => p.key === previous.key) || previous;
      } catch { /* the server restarts: try again next second */ }
    }
    tickTotp();
  }, 1000);
}

// --- mailbox ------------------------------------------------------------------------------

const OUTCOMES = {
  maintenue: "Candidature maintenue : sa validité repart pour 6 mois (un courriel de confirmation suit).",
  retiree: "Candidature retirée : elle et ses pièces sont effacées (un courriel de confirmation suit).",
  clarification: "Réponse pas claire : l'agent redemande (un courriel de clarification suit).",
  deja_traitee: "Cette question a déjà reçu sa réponse : rien ne change.",
  deja_clarifiee: "Une clarification a déjà été demandée : rien ne change.",
  deja_traite: "Ce courriel avait déjà été traité.",
  ferme: "La candidature est close : rien ne change.",
  candidature_inconnue: "Candidature inconnue.",
  expediteur_different: "Ignoré : l'expéditeur n'est pas l'adresse du candidat.",
  jeton_invalide: "Ignoré : la clé de réponse n'est pas valide.",
  sans_jeton: "Ignoré : ce courriel ne répond à aucune question de relance.",
  automatique: "Ignoré : courriel automatique.",
  rebond: "Rebond : l'adresse est marquée en échec.",
  illisible: "Courriel illisible.",
};

function outcomeText(code) {
  return OUTCOMES[code] || `Résultat : ${code}`;
}

function renderMailList() {
  const list = $("mail-list");
  const needle = $("mail-filter").value.trim().toLowerCase();
  const shown = needle
    ? state.mails.filter((m) => `${m.subject} ${m.to} ${m.from}`.toLowerCase().includes(needle))
    : state.mails;
  $("mail-empty").hidden = shown.length > 0 || state.selectedMail !== null;
  $("mail-empty").textContent = state.mails.length ? "Aucun courriel ne correspond au filtre." : "Aucun courriel pour l'instant.";
  list.replaceChildren(...shown.map((mail) => {
    const reply = mail.direction === "reply";
    const unread = !reply && !state.seenMails.has(mail.id);
    const button = el("button", {
      type: "button",
      class: `mail-item${unread ? " unread" : ""}`,
      "aria-current": state.selectedMail === mail.id ? "true" : null,
      onclick: () => openMail(mail.id),
    },
    el("span", { class: "subject", text: mail.subject || "(sans objet)" }),
    el("span", { class: "line" },
      el("span", { text: reply ? `De ${mail.from}` : `À ${mail.to}` }),
      el("span", { text: formatDateTime(mail.received_at) })),
    el("span", { class: "line" },
      el("span", { class: `tag${reply ? " reply" : ""}`, text: reply ? "Votre réponse" : "Envoyé par le service" }),
      mail.attachments ? el("span", { text: mail.attachments > 1 ? `${mail.attachments} pièces jointes` : "1 pièce jointe" }) : null));
    if (unread) button.setAttribute("aria-label", `Non lu : ${mail.subject}`);
    return el("li", {}, button);
  }));
}

async function mailLoop() {
  for (;;) {
    const query = new URLSearchParams({ timeout: "25" });
    if (state.mailVersion !== null) query.set("since", state.mailVersion);
    try {
      const data = await call(`/sandbox/api/mails?${query}`);
      const fresh = data.mails.filter((m) => m.direction === "sent" && !state.mails.some((o) => o.id === m.id));
      state.mailVersion = data.version;
      state.mails = data.mails;
      if (!state.mailsPrimed) {
        // Mails from an earlier run are not news.
        for (const mail of data.mails) state.seenMails.add(mail.id);
        state.mailsPrimed = true;
      } else if (fresh.length) {
        $("mail-announce").textContent = fresh.length === 1
          ? `Nouveau courriel : ${fresh[0].subject}`
          : `${fresh.length} nouveaux courriels`;
        if (narrow() && !$("panel-mail").classList.contains("active")) {
          const badge = $("mail-badge");
          badge.textContent = String(fresh.length + (Number(badge.textContent) || 0) * Number(!badge.hidden));
          badge.hidden = false;
        }
      }
      renderMailList();
      if (state.selectedMail !== null) {
        const selected = state.mails.find((m) => m.id === state.selectedMail);
        if (!selected) closeMail();
      }
    } catch {
      await sleep(1500);
    }
  }
}

async function openMail(id) {
  let mail;
  try { mail = await call(`/sandbox/api/mails/${id}`); }
  catch (error) { toast(error.message, true); return; }
  state.selectedMail = id;
  state.seenMails.add(id);
  renderMailList();
  $("mail-list").hidden = true;
  $("mail-filter-box").hidden = true;
  $("mail-empty").hidden = true;
  $("mail-detail").hidden = false;
  $("mail-subject").textContent = mail.subject || "(sans objet)";
  const labels = { From: "De", To: "À", Cc: "Copie", "Reply-To": "Répondre à", Date: "Date", Subject: "Objet", "Message-ID": "Message-ID" };
  $("mail-headers").replaceChildren(...Object.entries(mail.headers).flatMap(([name, value]) =>
    [el("dt", { text: labels[name] || name }), el("dd", { text: value })]));
  $("mail-raw").href = mail.raw_url;
  $("mail-text").replaceChildren(linkify(mail.text));
  $("view-html").disabled = !mail.has_html;
  setMailView(mail.has_html ? state.mailView : "text", mail);
  const files = mail.attachment_files;
  $("mail-attachments").hidden = files.length === 0;
  $("attachment-list").replaceChildren(...files.map((f) => el("li", {},
    el("a", { href: f.url, download: f.filename, text: f.filename }), ` (${f.mime}, ${formatSize(f.size)})`)));
  const canReply = mail.direction === "sent";
  $("reply-form").hidden = !canReply;
  $("reply-result").textContent = mail.direction === "reply" && mail.outcome ? outcomeText(mail.outcome) : "";
  $("reply-result").className = "status-line";
  $("mail-subject").focus();
}

function closeMail() {
  state.selectedMail = null;
  $("mail-detail").hidden = true;
  $("mail-list").hidden = false;
  $("mail-filter-box").hidden = false;
  $("mail-frame").removeAttribute("src");
  renderMailList();
}

function setMailView(view, mail) {
  state.mailView = view;
  const html = view === "html";
  $("view-html").setAttribute("aria-pressed", String(html));
  $("view-text").setAttribute("aria-pressed", String(!html));
  $("mail-frame").hidden = !html;
  $("mail-text").hidden = html;
  if (html && mail) $("mail-frame").src = mail.html_url;
}

function linkify(text) {
  const fragment = document.createDocumentFragment();
  const pattern = /https?:\/\/[^\s<>"')]+/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    fragment.append(text.slice(last, match.index), linkNode(match[0], match[0]));
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

// The frame shows the mail's HTML without scripts; its links are taken over from here so a
// Telegram deep link opens the sandbox chat instead of t.me.
function wireMailFrame() {
  const frame = $("mail-frame");
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (!doc) return;
    doc.addEventListener("click", (event) => {
      const anchor = event.target.closest && event.target.closest("a[href]");
      if (!anchor) return;
      event.preventDefault();
      openLink(anchor.getAttribute("href"));
    });
    const height = doc.documentElement ? doc.documentElement.scrollHeight : 0;
    if (height) frame.style.height = `${Math.min(Math.max(height + 16, 200), 640)}px`;
  });
}

async function sendReply(event) {
  event.preventDefault();
  const text = $("reply-text").value.trim();
  if (!text || state.selectedMail === null) return;
  const result = $("reply-result");
  $("reply-button").disabled = true;
  result.className = "status-line";
  result.textContent = "Envoi de la réponse…";
  try {
    const data = await call(`/sandbox/api/mails/${state.selectedMail}/reply`, { text, user_id: state.current.user_id });
    result.textContent = `Réponse envoyée depuis ${data.sender}. ${outcomeText(data.outcome)}`;
    result.className = "status-line success";
    $("reply-text").value = "";
  } catch (error) {
    result.textContent = `Échec : ${error.message}`;
    result.className = "status-line error";
  } finally {
    $("reply-button").disabled = false;
  }
}

// --- renewal sweep --------------------------------------------------------------------------

function plural(n, one, many) { return `${n} ${n > 1 ? many : one}`; }

async function runSweep(event) {
  event.preventDefault();
  const result = $("sweep-result");
  $("sweep-button").disabled = true;
  result.className = "status-line";
  result.textContent = "Relance en cours…";
  try {
    const data = await call("/sandbox/api/sweep", { date: $("sweep-date").value });
    const day = new Date(`${data.date}T12:00:00`).toLocaleDateString("fr-FR");
    result.textContent = `Relance du ${day} : ${plural(data.asked.length, "question envoyée", "questions envoyées")}, `
      + `${plural(data.reminded.length, "rappel", "rappels")}, ${plural(data.deleted.length, "suppression", "suppressions")}.`;
    result.className = "status-line success";
  } catch (error) {
    result.textContent = `Échec : ${error.message}`;
    result.className = "status-line error";
  } finally {
    $("sweep-button").disabled = false;
  }
}

// --- start -----------------------------------------------------------------------------------

function wire() {
  for (const panel of PANELS) $(`tab-${panel}`).addEventListener("click", () => showPanel(panel, true));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const box = $("composer-text");
    const text = box.value;
    box.value = "";
    autosize();
    sendText(text);
    box.focus();
  });
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer-text").addEventListener("input", autosize);
  $("menu-button").addEventListener("click", () => toggleMenu());
  $("command-menu").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { toggleMenu(false); $("menu-button").focus(); }
  });
  $("attach-document").addEventListener("click", () => $("file-document").click());
  $("attach-photo").addEventListener("click", () => $("file-photo").click());
  for (const [input, kind] of [["file-document", "document"], ["file-photo", "photo"]]) {
    $(input).addEventListener("change", async () => {
      const files = [...$(input).files];
      $(input).value = "";
      for (const file of files) await upload(kind, file);
      $("composer-text").focus();
    });
  }
  $("new-persona").addEventListener("click", async () => {
    try {
      const persona = await call("/sandbox/api/personas", {});
      state.personas.push(persona);
      selectPersona(persona.key);
      $(`persona-${persona.key}`).focus();
    } catch (error) { toast(error.message, true); }
  });
  $("totp-send").addEventListener("click", () => {
    if (state.current && state.current.totp) sendText(state.current.totp.code);
    if (narrow()) showPanel("chat");
  });
  $("mail-back").addEventListener("click", () => { closeMail(); const first = $("mail-list").querySelector("button"); if (first) first.focus(); });
  $("view-html").addEventListener("click", () => setMailView("html", { html_url: `/sandbox/api/mails/${state.selectedMail}/html` }));
  $("view-text").addEventListener("click", () => setMailView("text"));
  $("reply-form").addEventListener("submit", sendReply);
  $("mail-filter").addEventListener("input", renderMailList);
  $("sweep-form").addEventListener("submit", runSweep);
  wireMailFrame();
}

async function start() {
  wire();
  showPanel("chat");
  for (;;) {
    try { await refreshState(); break; } catch { await sleep(1000); }
  }
  let saved = null;
  try { saved = localStorage.getItem("sandbox-persona"); } catch { /* private mode */ }
  const wanted = new URLSearchParams(window.location.search).get("persona") || saved;
  selectPersona(state.personas.some((p) => p.key === wanted) ? wanted : state.personas[0].key);
  startTotpClock();
  mailLoop();
}

document.addEventListener("DOMContentLoaded", start);
