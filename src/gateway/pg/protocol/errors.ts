import { LineageError } from '../../../errors.js'

/** Stable codes of {@link ProtocolError}. */
export type ProtocolErrorCode =
  /** A declared frame length above the framer's cap. */
  | 'ERR_PG_FRAME_TOO_LARGE'
  /** A declared frame length below the smallest possible frame. */
  | 'ERR_PG_FRAME_INVALID'
  /** A message body that does not match its message type: truncated, trailing bytes, bad values. */
  | 'ERR_PG_MESSAGE_INVALID'
  /** A startup packet with an unknown request code or protocol major version. */
  | 'ERR_PG_PROTOCOL_UNSUPPORTED'

/**
 * Bad bytes from the world: a peer that does not speak protocol 3.0 correctly. The connection
 * it came from cannot be trusted to stay in step and should be closed (after an ErrorResponse
 * carrying `sqlstate`, when the peer is a client).
 */
export class ProtocolError extends LineageError {
  declare readonly code: ProtocolErrorCode
  /** The SQLSTATE an ErrorResponse for this error carries (Appendix A, class 08 / 0A). */
  readonly sqlstate: string

  constructor (code: ProtocolErrorCode, description: string) {
    super(code, 'invalid_request', 400, description)
    // 08P01 protocol_violation, as the server reports malformed messages; 0A000
    // feature_not_supported, as it reports "unsupported frontend protocol".
    this.sqlstate = code === 'ERR_PG_PROTOCOL_UNSUPPORTED' ? '0A000' : '08P01'
  }
}
