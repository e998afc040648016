// <churnsaver-widget>: the in-app messages card and the cancel flow, in a shadow root. The host
// page hears what happened through composed events: churnsaver:offer-accepted, churnsaver:canceled
// and churnsaver:closed.
import { WidgetApiError } from "./api.js";
import { translator } from "./i18n.js";
import { STYLES } from "./styles.js";

const FOCUSABLE = "button:not([disabled]),a[href],input:not([disabled]),textarea:not([disabled]),[tabindex]:not([tabindex='-1'])";
const URL_PATTERN = /https?:\/\/[^\s<>"']+/g;

// Builds an element: h("button", {class: "x", onclick}, "text", child…). Text is always text.
function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child != null));
  return node;
}

// A message's text with its http(s) links as short labelled links (a signed link is long and
// means nothing to read); nothing in the text is read as HTML.
function linked(text, label) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    parts.push(text.slice(last, match.index), h("a", { href: match[0], target: "_blank", rel: "noopener noreferrer" }, label));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

// Dismissals last the browser session; storage may be off (a sandboxed frame, strict privacy).
function remembered(key) {
  try {
    return sessionStorage.getItem(key) !== null;
  } catch {
    return false;
  }
}

function remember(key) {
  try {
    sessionStorage.setItem(key, "1");
  } catch {
    // Not remembered: the card shows again on the next page.
  }
}

// A random UUID (v4) from the browser's CSPRNG; crypto.randomUUID needs a secure context.
function newAttemptId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class ChurnSaverWidget extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    this.root.append(h("style", {}, STYLES));
    this.session = null;
    this.t = translator("en", "");
    this.flow = null;
  }

  connect(api) {
    this.api = api;
    this.ready = this.load();
    return this.ready;
  }

  async load() {
    try {
      this.apply(await this.api.session({ locale: navigator.language }));
    } catch (error) {
      this.session = null;
      this.loadError = error;
    }
  }

  apply(session) {
    this.session = session;
    this.t = translator(session.locale, session.brand.name);
    this.style.setProperty("--cs-brand", session.brand.color);
    this.renderMessages();
  }

  brandLine() {
    const { name, logoUrl } = this.session.brand;
    return h("div", { class: "brand" }, logoUrl ? h("img", { class: "logo", src: logoUrl, alt: "" }) : null, name);
  }

  renderMessages() {
    this.card?.remove();
    const messages = this.session.messages;
    if (!messages.length || remembered(`churnsaver:dismissed:${messages[0].id}`)) return;
    const title = this.t("messages");
    this.card = h(
      "section",
      { class: "card", role: "region", "aria-label": title },
      h("h2", {}, title),
      h("ul", {}, messages.map((message) => h("li", {}, linked(message.text, this.t("openLink"))))),
      h("button", { class: "x", type: "button", "aria-label": this.t("dismiss"), onclick: () => this.dismissMessages() }, "×"),
    );
    this.root.append(this.card);
  }

  dismissMessages() {
    remember(`churnsaver:dismissed:${this.session.messages[0].id}`);
    this.card.remove();
    this.card = null;
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(`churnsaver:${name}`, { bubbles: true, composed: true, detail }));
  }

  // The cancel flow: exit survey → an offer for the reason → accept it, or confirm the cancel.
  async openCancelFlow() {
    await this.ready;
    if (this.flow) return this.flow.done;
    if (!this.session) {
      this.emit("closed", { error: this.loadError?.message || "unavailable" });
      return { outcome: "unavailable" };
    }
    let finish;
    const done = new Promise((resolve) => (finish = resolve));
    this.flow = { done, finish, reason: null, comment: "", offer: null, opener: document.activeElement };
    this.dialog = h("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "cs-title" });
    this.backdrop = h("div", { class: "backdrop", onmousedown: (event) => event.target === this.backdrop && this.close() }, this.dialog);
    this.backdrop.addEventListener("keydown", (event) => this.onKey(event));
    this.root.append(this.backdrop);
    this.showSurvey();
    return done;
  }

  screen(title, ...content) {
    this.dialog.replaceChildren(
      this.brandLine(),
      h("button", { class: "x", type: "button", "aria-label": this.t("close"), onclick: () => this.close() }, "×"),
      h("h2", { id: "cs-title", tabindex: "-1" }, title),
      ...content.filter((node) => node != null),
    );
    this.status = h("p", { class: "status", role: "alert" });
    this.dialog.append(this.status);
    const first = this.dialog.querySelector("input,textarea,.actions button") || this.dialog.querySelector("h2");
    first.focus();
  }

  showSurvey() {
    const t = this.t;
    const reasons = this.session.survey.reasons.map((reason) =>
      h("label", { class: "reason" }, h("input", { type: "radio", name: "reason", value: reason.code, checked: reason.code === this.flow.reason }), reason.label),
    );
    const comment = h("textarea", { id: "cs-comment", maxlength: "1000" });
    comment.value = this.flow.comment;
    this.screen(
      t("surveyTitle"),
      h("p", {}, t("surveyHint")),
      h("fieldset", {}, h("legend", {}, t("surveyTitle")), reasons),
      h("label", { class: "field", for: "cs-comment" }, t("comment")),
      comment,
      h(
        "div",
        { class: "actions" },
        h("button", { class: "secondary", type: "button", onclick: () => this.close() }, t("keep")),
        h("button", { class: "primary", type: "button", onclick: () => this.afterSurvey() }, t("continue")),
      ),
    );
  }

  async afterSurvey() {
    const chosen = this.dialog.querySelector("input[name=reason]:checked");
    if (!chosen) {
      this.status.textContent = this.t("chooseReason");
      return;
    }
    this.flow.reason = chosen.value;
    this.flow.comment = this.dialog.querySelector("textarea").value.trim();
    const answer = await this.busy(() => this.api.session({ locale: this.session.locale, cancelReason: this.flow.reason }));
    if (!answer) return;
    const [offer] = answer.offers || [];
    this.flow.offer = offer || null;
    this.flow.caseId = answer.customer.caseId;
    if (offer) this.showOffer(offer);
    else this.showConfirm();
  }

  showOffer(offer) {
    const t = this.t;
    this.screen(
      t("offerTitle"),
      h("div", { class: "offer" }, h("strong", {}, offer.title), h("span", {}, offer.description)),
      h(
        "div",
        { class: "actions" },
        h("button", { class: "secondary", type: "button", onclick: () => this.showConfirm() }, t("declineAndCancel")),
        h("button", { class: "primary", type: "button", onclick: () => this.accept(offer) }, t("accept")),
      ),
    );
  }

  showConfirm() {
    const t = this.t;
    this.screen(
      t("confirmTitle"),
      h("p", {}, t("confirmText")),
      h(
        "div",
        { class: "actions" },
        h("button", { class: "secondary", type: "button", onclick: () => this.close() }, t("keep")),
        h("button", { class: "primary", type: "button", onclick: () => this.confirmCancel() }, t("confirmCancel")),
      ),
    );
  }

  async accept(offer) {
    // One attempt per click: the server refuses the same attempt twice (a replay).
    const attempt = newAttemptId();
    const result = await this.busy(() => this.api.accept(offer.id, { attempt, reason: this.flow.reason, caseId: this.flow.caseId }));
    if (!result) return;
    const { id, status, url } = result.redemption;
    const detail = { offerId: offer.id, kind: offer.kind, redemptionId: id, status, url: url || null };
    this.emit("offer-accepted", detail);
    const pending = status === "PENDING";
    const [title, text] = pending ? ["pendingTitle", "pendingText"] : ["acceptedTitle", "acceptedText"];
    this.finished({ outcome: "accepted", ...detail }, this.t(title), this.t(text), url);
  }

  async confirmCancel() {
    const result = await this.busy(() => this.api.cancel({ reason: this.flow.reason, comment: this.flow.comment }));
    if (!result) return;
    const detail = { reason: this.flow.reason, comment: this.flow.comment, handledBy: result.handledBy };
    this.emit("canceled", detail);
    if (result.handledBy === "merchant") this.end({ outcome: "canceled", ...detail });
    else this.finished({ outcome: "canceled", ...detail }, this.t("canceledTitle"), this.t("canceledText"));
  }

  finished(outcome, title, text, url) {
    this.flow.outcome = outcome;
    this.screen(
      title,
      h("p", {}, text),
      url ? h("p", {}, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, this.t("continueAt"))) : null,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "button", onclick: () => this.end(outcome) }, this.t("close"))),
    );
    this.load();
  }

  // Runs a call with the dialog's buttons disabled; its answer, or null with the reason shown.
  async busy(call) {
    const buttons = [...this.dialog.querySelectorAll(".actions button")];
    buttons.forEach((button) => (button.disabled = true));
    this.status.textContent = "";
    this.dialog.setAttribute("aria-busy", "true");
    try {
      return await call();
    } catch (error) {
      const reason = error instanceof WidgetApiError ? error.message : String(error);
      this.status.textContent = this.t("failed", { reason });
      return null;
    } finally {
      this.dialog.removeAttribute("aria-busy");
      buttons.forEach((button) => (button.disabled = false));
    }
  }

  onKey(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
    } else if (event.key === "Tab") {
      // The focus stays in the dialog while it is open.
      const focusable = [...this.dialog.querySelectorAll(FOCUSABLE)];
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      const active = this.root.activeElement;
      if (event.shiftKey && (active === first || !this.dialog.contains(active))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  close() {
    if (this.flow?.outcome) return this.end(this.flow.outcome);
    this.emit("closed", { reason: this.flow?.reason || null });
    this.end({ outcome: "closed" });
  }

  end(outcome) {
    const { finish, opener } = this.flow;
    this.backdrop.remove();
    this.flow = null;
    opener?.focus?.();
    finish(outcome);
  }
}
