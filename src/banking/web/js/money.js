// Amounts travel as integers in minor units; these helpers format and parse them
// without ever going through a binary float.

// ISO 4217 minor-unit exponents; anything unlisted uses 2.
const EXPONENTS = {
  BHD: 3, CLP: 0, EUR: 2, GBP: 2, ISK: 0, JOD: 3, JPY: 0, KRW: 0, KWD: 3, OMR: 3,
  TND: 3, UGX: 0, USD: 2, VND: 0, CHF: 2, CAD: 2, AUD: 2, SEK: 2, NOK: 2, DKK: 2,
};

export function exponent(currency) {
  return EXPONENTS[String(currency).toUpperCase()] ?? 2;
}

// "12345" minor units of USD → "123.45" (exact, for any integer size).
export function toDecimalString(minor, currency) {
  const digits = exponent(currency);
  let value = BigInt(minor);
  const negative = value < 0n;
  if (negative) value = -value;
  const text = value.toString().padStart(digits + 1, "0");
  const whole = text.slice(0, text.length - digits);
  const fraction = digits ? "." + text.slice(text.length - digits) : "";
  return (negative ? "-" : "") + whole + fraction;
}

const formatters = new Map();

export function formatMoney(minor, currency, { signed = false } = {}) {
  const code = String(currency).toUpperCase();
  const key = `${code}:${signed}`;
  if (!formatters.has(key)) {
    const digits = exponent(code);
    formatters.set(key, new Intl.NumberFormat(undefined, {
      style: "currency",
      currency: code,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
      signDisplay: signed ? "exceptZero" : "auto",
    }));
  }
  // Intl formats decimal strings exactly, so no float rounding creeps in.
  return formatters.get(key).format(toDecimalString(minor, code));
}

// "1,234.5" → 123450 for USD; null when the text is not a valid positive amount.
export function parseAmount(text, currency) {
  const digits = exponent(currency);
  const cleaned = String(text).trim().replace(/[\s,_]/g, "");
  const pattern = digits ? new RegExp(`^(\\d+)(?:\\.(\\d{1,${digits}}))?$`) : /^(\d+)$/;
  const match = cleaned.match(pattern);
  if (!match) return null;
  const minor = BigInt(match[1]) * 10n ** BigInt(digits) + BigInt((match[2] ?? "").padEnd(digits, "0") || "0");
  if (minor <= 0n || minor > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(minor);
}
