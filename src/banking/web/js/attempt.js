// One Idempotency-Key per attempt of a money movement. The key is kept while the same
// attempt may be sent again (a double click, a retry after a network failure or a 5xx)
// and replaced once the bank has given a definitive answer or the form changes, so the
// same movement is never applied twice and a new one is never mistaken for a retry.

import { newIdempotencyKey } from "./api.js";

export function attempt(form) {
  let key = newIdempotencyKey();
  const renew = () => {
    key = newIdempotencyKey();
  };
  form?.addEventListener("input", renew);
  return {
    get key() {
      return key;
    },
    // After an answer: keep the key only when the outcome is unknown.
    settle(error = null) {
      const unknown = error && (error.status === 0 || error.status >= 500
        || error.code === "idempotency_key_in_flight");
      if (!unknown) renew();
    },
    renew,
  };
}
