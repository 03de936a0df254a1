// The REST API as the page uses it: the session cookie goes by itself, the CSRF
// token rides on every change, and an error comes back as ApiError(code, message).
let csrfToken = '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) { csrfToken = token || ''; }

export async function api(method, path, body, { raw = false, headers = {} } = {}) {
  const options = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (method !== 'GET') options.headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) {
    if (raw) {
      options.body = body;
    } else {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let payload = null;
  try { payload = text ? JSON.parse(text) : null; } catch { payload = null; }
  if (!response.ok) {
    const error = (payload && payload.error) || {};
    throw new ApiError(response.status, error.code || 'http_error', error.message || response.statusText);
  }
  return payload;
}
