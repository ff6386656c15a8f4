// Report form logic, kept apart from the component so that it can be tested on its own.

import { API_BASE, ApiError, type Category, fetchJson } from "./api";

export interface ReportDraft {
  lat: number | null;
  lon: number | null;
  category: string;
  description: string;
  /** Value of an <input type="datetime-local"> ("2026-11-27T21:30"), or "" for "not given". */
  occurredAt: string;
}

export const EMPTY_DRAFT: ReportDraft = { lat: null, lon: null, category: "", description: "", occurredAt: "" };

/** The form's fields, as errors are shown next to them. "form" is the submit button's area. */
export type FieldName = "location" | "category" | "description" | "occurred_at" | "form";
export type FieldErrors = Partial<Record<FieldName, string>>;

export interface ReportPayload {
  lat: number;
  lon: number;
  category: string;
  description?: string;
  occurred_at?: string;
}

/** Control and bidi characters, which the server strips (shared/report.py). */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/g;

/** The description as the server measures it: NFC, control characters removed, trimmed. */
export function normaliseDescription(text: string): string {
  return text.normalize("NFC").replace(CONTROL, "").trim();
}

export function descriptionLength(text: string): number {
  return [...normaliseDescription(text)].length;
}

/** "2026-11-27T21:30" (local time) -> "2026-11-27T21:30:00+01:00"; null when unreadable. */
export function localDateTimeToIso(value: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v)));
  const date = new Date(y, mo - 1, d, h, mi, s);
  if (Number.isNaN(date.getTime()) || date.getMonth() !== mo - 1 || date.getDate() !== d) return null;
  const offsetMin = -date.getTimezoneOffset();
  const sign = offsetMin >= 0 ? "+" : "-";
  const abs = Math.abs(offsetMin);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${pad4(date.getFullYear())}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function pad4(n: number): string {
  return String(n).padStart(4, "0");
}

/** The server refuses reports older than this. */
export const OLDEST = "2000-01-01T00:00:00Z";

export interface ValidationContext {
  categories: Category[] | null;
  descriptionMax: number;
  now?: Date;
}

/** Checks a draft before sending; the messages are shown next to the field they concern. */
export function validateDraft(draft: ReportDraft, ctx: ValidationContext): FieldErrors {
  const errors: FieldErrors = {};
  if (draft.lat === null || draft.lon === null) {
    errors.location = "Choose a place: tap or click the map, or use your location.";
  } else if (
    !Number.isFinite(draft.lat) ||
    !Number.isFinite(draft.lon) ||
    Math.abs(draft.lat) > 90 ||
    Math.abs(draft.lon) > 180
  ) {
    errors.location = "This place is outside the map. Choose another place.";
  }
  if (draft.category === "") {
    errors.category = "Choose a category.";
  } else if (ctx.categories && !ctx.categories.some((c) => c.id === draft.category)) {
    errors.category = "Choose a category from the list.";
  }
  const len = descriptionLength(draft.description);
  if (len > ctx.descriptionMax) {
    const over = len - ctx.descriptionMax;
    errors.description = `Description is too long: ${over} character${over === 1 ? "" : "s"} over the limit of ${ctx.descriptionMax}.`;
  }
  if (draft.occurredAt !== "") {
    const iso = localDateTimeToIso(draft.occurredAt);
    if (iso === null) {
      errors.occurred_at = "Enter a date and time, or leave it empty.";
    } else if (Date.parse(iso) > (ctx.now ?? new Date()).getTime() + 60_000) {
      errors.occurred_at = "The time cannot be in the future.";
    } else if (Date.parse(iso) < Date.parse(OLDEST)) {
      errors.occurred_at = "The time must be in the year 2000 or later.";
    }
  }
  return errors;
}

export function buildPayload(draft: ReportDraft): ReportPayload {
  if (draft.lat === null || draft.lon === null) throw new Error("draft has no location");
  const payload: ReportPayload = {
    lat: Math.round(draft.lat * 1e6) / 1e6,
    lon: Math.round(draft.lon * 1e6) / 1e6,
    category: draft.category,
  };
  const description = normaliseDescription(draft.description);
  if (description !== "") payload.description = description;
  if (draft.occurredAt !== "") {
    const iso = localDateTimeToIso(draft.occurredAt);
    if (iso) payload.occurred_at = iso;
  }
  return payload;
}

/** A random UUID (v4); crypto.randomUUID needs a secure context, getRandomValues does not. */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") {
    try {
      return c.randomUUID();
    } catch {
      // insecure context: fall through
    }
  }
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Server field names -> the form field whose error area shows the message. */
export function formFieldFor(serverField: string | null | undefined): FieldName {
  switch (serverField) {
    case "lat":
    case "lon":
    case "location":
      return "location";
    case "category":
      return "category";
    case "description":
      return "description";
    case "occurred_at":
      return "occurred_at";
    default:
      return "form";
  }
}

export type SubmitOutcome =
  /** 202: the report is queued. */
  | { kind: "accepted"; id: string }
  /**
   * The server answered and refused this body (400, 413, 415, 422, ...): it was not stored, and
   * the same body would be refused again. The next attempt is a new request: new key.
   */
  | { kind: "rejected"; errors: FieldErrors }
  /**
   * No answer, or "try again later" (429, 503, other 5xx): the report may or may not have been
   * stored. A retry must carry the same Idempotency-Key so that it cannot be stored twice.
   */
  | { kind: "retry"; errors: FieldErrors; retryAfter: number | null };

function secondsText(s: number): string {
  if (s < 90) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.ceil(s / 60);
  return `${m} minutes`;
}

function isOffline(): boolean {
  return typeof navigator !== "undefined" && navigator.onLine === false;
}

const FIELD_NAMES: Record<string, string> = {
  lat: "Latitude",
  lon: "Longitude",
  category: "Category",
  description: "Description",
  occurred_at: "Time",
};

/** "description: must be at most 500 characters" -> "Description must be at most 500 characters." */
export function humanMessage(field: string | null, message: string): string {
  let text = message.trim();
  if (field && text.toLowerCase().startsWith(`${field.toLowerCase()}:`)) {
    text = `${FIELD_NAMES[field] ?? field} ${text.slice(field.length + 1).trim()}`;
  }
  if (text === "") return text;
  text = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** Errors from a refused request, placed next to their fields. */
export function errorsFromBody(body: unknown, fallback: string): FieldErrors {
  const errors: FieldErrors = {};
  const obj = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const add = (field: string | null, message: unknown) => {
    const where = formFieldFor(field);
    const msg = humanMessage(field, typeof message === "string" && message !== "" ? message : fallback);
    errors[where] = errors[where] ? `${errors[where]} ${msg}` : msg;
  };
  if (Array.isArray(obj.errors)) {
    for (const item of obj.errors) {
      if (!item || typeof item !== "object") continue;
      const e = item as Record<string, unknown>;
      add(typeof e.field === "string" ? e.field : null, e.message);
    }
  }
  if (Object.keys(errors).length === 0) add(typeof obj.field === "string" ? obj.field : null, obj.message);
  return errors;
}

export async function submitReport(
  payload: ReportPayload,
  idempotencyKey: string,
  fetchImpl: typeof fetch = fetch,
): Promise<SubmitOutcome> {
  try {
    const body = await fetchJson<Record<string, unknown>>(
      `${API_BASE}/report/add`,
      {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": idempotencyKey },
        body: JSON.stringify(payload),
      },
      fetchImpl,
    );
    const id = body && typeof body.id === "string" ? body.id : body && body.id != null ? String(body.id) : "";
    return { kind: "accepted", id };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const { status } = err;
    if (status === 0) {
      const message = isOffline()
        ? "You are offline. Your report has not been sent: connect to the internet and press Submit report again."
        : "The server could not be reached. Your report may not have been sent: press Submit report to try again.";
      return { kind: "retry", errors: { form: message }, retryAfter: null };
    }
    if (status === 429) {
      const wait = err.retryAfter;
      const message =
        wait != null
          ? `Too many reports from your connection. Please wait ${secondsText(wait)} and press Submit report again.`
          : "Too many reports from your connection. Please wait a little and press Submit report again.";
      return { kind: "retry", errors: { form: message }, retryAfter: wait };
    }
    if (status >= 500 || status === 408) {
      const wait = err.retryAfter;
      const message =
        `The service is busy and could not take your report right now. ` +
        (wait != null ? `Please try again in ${secondsText(wait)}.` : "Please try again in a moment.");
      return { kind: "retry", errors: { form: message }, retryAfter: wait };
    }
    if (status === 413) {
      return { kind: "rejected", errors: { description: "The report is too large. Shorten the description." } };
    }
    if (status === 409) {
      // The key was already used with another body: the earlier attempt may have been stored.
      return { kind: "rejected", errors: { form: humanMessage(null, err.message || "This report was already sent.") } };
    }
    return { kind: "rejected", errors: errorsFromBody(err.body, err.message || "The report was not accepted.") };
  }
}
