/** The API's error types: each carries the HTTP status it answers with (the shared error middleware maps them). */

/** The addressed resource does not exist. */
export class NotFoundError extends Error {
  readonly status = 404;
}

/** A request that is well-formed but does not apply to the resource in its current state. */
export class ConflictError extends Error {
  readonly status = 409;
}

/** One field of the request is wrong in a way its schema could not say (e.g. a schedule Temporal refuses). */
export class RequestFieldError extends Error {
  readonly status = 400;
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}
