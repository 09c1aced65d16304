/**
 * The PostgreSQL frontend/backend protocol 3.0 codec: framing, parsing, serializing. It
 * knows nothing of sockets; the gateway's connections feed it bytes and write what it builds.
 */
export { AuthenticationType, BackendCode, FrontendCode, StartupCode } from './codes.js'
export { ProtocolError, type ProtocolErrorCode } from './errors.js'
export { Framer, encodeFrame, type Frame, type FramerMode, type FramerOptions } from './framer.js'
export { Reader } from './reader.js'
export { Writer } from './writer.js'
export {
  parseStartup, parseQuery, parseParse, parseBind, parseBindTarget, parseDescribe, parseClose, parseExecute, parseFunctionCall,
  parsePassword, parseSASLInitialResponse, parseEmpty, defaultStartupLimits,
  startupMessage, sslRequest, gssencRequest, cancelRequest, passwordMessage,
  saslInitialResponse, saslResponse, query, terminate,
  type StartupRequest, type StartupLimits, type ParseMessage, type BindMessage, type StatementOrPortal
} from './frontend.js'
export {
  parseAuthentication, parseSASLMechanisms, parseRowDescription, parseDataRow,
  parseCommandComplete, commandRows, parseErrorFields, parseBackendKeyData, parseParameterStatus,
  parseReadyForQuery,
  authenticationOk, authenticationCleartextPassword, parameterStatus, backendKeyData,
  readyForQuery, errorResponse, noticeResponse, rowDescription, dataRow, commandComplete,
  emptyQueryResponse, negotiateProtocolVersion,
  type Authentication, type FieldDescription, type TransactionStatus, type Notice
} from './backend.js'
