// Calls to Junction's management API and triggers, with the signed-in person's credentials.
// The console has no authority of its own: a call fails exactly as it would from curl.

import { authorization } from "./auth.js";

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

async function readBody(response) {
  const text = await response.text();
  const type = response.headers.get("content-type") || "";
  if (text && type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * One HTTP call. Options: json (a value sent as application/json), body + contentType (sent
 * as is), headers, ifMatch, anonymous (send no credentials). Resolves to {status, headers,
 * body, etag}; a non-2xx answer rejects with an ApiError carrying Junction's code and message.
 */
export async function call(method, path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    body = options.body;
    if (options.contentType) headers["Content-Type"] = options.contentType;
  }
  if (options.ifMatch) headers["If-Match"] = options.ifMatch;
  if (!options.anonymous) {
    const value = await authorization();
    if (value) headers.Authorization = value;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit", signal: options.signal });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "NetworkError", `Junction did not answer (${error && error.message ? error.message : error})`);
  }
  const parsed = await readBody(response);
  if (!response.ok) {
    const err = parsed && typeof parsed === "object" && parsed.error ? parsed.error : null;
    const code = err && err.code ? String(err.code) : `HTTP${response.status}`;
    const message = err && err.message ? String(err.message) : (typeof parsed === "string" && parsed.trim()) || response.statusText || "request failed";
    throw new ApiError(response.status, code, message.slice(0, 4000), parsed);
  }
  return { status: response.status, headers: response.headers, body: parsed, etag: response.headers.get("etag") };
}

export const get = (path, options) => call("GET", path, options).then((r) => r.body);

export function enc(value) {
  return encodeURIComponent(value);
}
