/**
 * Message type bytes and request codes of the frontend/backend protocol 3.0 (PostgreSQL
 * documentation, "Message Formats"). The same letter means different messages in each
 * direction ('D' is Describe from a client, DataRow from a server), hence two enums.
 */

/** Tags of the messages a frontend (client) sends. */
export const enum FrontendCode {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  CopyFail = 0x66, // f
  /** Also GSSResponse, SASLInitialResponse and SASLResponse: the authentication exchange decides which. */
  PasswordMessage = 0x70, // p
}

/** Tags of the messages a backend (server) sends. */
export const enum BackendCode {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
}

/**
 * The int32 code after the length of an untagged (startup-phase) message. The special
 * requests use major version 1234, which no protocol will ever have.
 */
export const enum StartupCode {
  /** Protocol 3.0: major 3 in the high 16 bits, minor 0 in the low 16 bits. */
  Protocol30 = 196608,
  CancelRequest = 80877102, // 1234 << 16 | 5678
  SSLRequest = 80877103, // 1234 << 16 | 5679
  GSSENCRequest = 80877104, // 1234 << 16 | 5680
}

/** Subtypes of the Authentication ('R') message. */
export const enum AuthenticationType {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}
