// Calls to the widget API on the app's own origin: the publishable key in a header and the
// signed customer id in every body, so each call stands on its own.
export class WidgetApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function client(origin, config) {
  async function post(path, body = {}) {
    let response;
    try {
      response = await fetch(`${origin}/widgets/v1/${path}`, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json", "X-Churnsaver-Key": config.key },
        body: JSON.stringify({ customer: config.customer, signature: config.signature, ...body }),
      });
    } catch {
      throw new WidgetApiError(0, "NETWORK", "the service cannot be reached");
    }
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = payload.error || {};
      throw new WidgetApiError(response.status, error.code || "ERROR", error.message || `HTTP ${response.status}`);
    }
    return payload;
  }
  return {
    session: (body) => post("session", body),
    accept: (offerId, body) => post(`offers/${encodeURIComponent(offerId)}/accept`, body),
    cancel: (body) => post("cancel", body),
  };
}
