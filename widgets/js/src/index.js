// The loader: one script tag on the merchant's page,
//   <script src="https://HOST/widgets/v1/churnsaver.js" data-key="pk_…" data-customer="ID" data-signature="HMAC" async>
// Its configuration comes from the tag's data attributes and the API's origin from the tag's own
// src, so the page never names our host twice. It exposes window.ChurnSaver.openCancelFlow().
import { client } from "./api.js";
import { ChurnSaverWidget } from "./element.js";

(() => {
  const script = document.currentScript;
  if (!script || window.ChurnSaver?.version) return;
  const origin = new URL(script.src).origin;
  const { key, customer, signature } = script.dataset;
  if (!key || !customer || !signature) {
    console.error("churnsaver: the script tag needs data-key, data-customer and data-signature");
    return;
  }
  if (!customElements.get("churnsaver-widget")) customElements.define("churnsaver-widget", ChurnSaverWidget);
  const widget = document.createElement("churnsaver-widget");
  const ready = widget.connect(client(origin, { key, customer, signature }));
  const mount = () => document.body.append(widget);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
  // Calls made before the script loaded (window.ChurnSaver = {q: [["openCancelFlow"]]}) run now.
  const queued = window.ChurnSaver?.q || [];
  window.ChurnSaver = Object.freeze({
    version: "1",
    ready,
    openCancelFlow: () => widget.openCancelFlow(),
  });
  for (const [method] of queued) if (method === "openCancelFlow") window.ChurnSaver.openCancelFlow();
})();
