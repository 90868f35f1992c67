// Types of stated.js, the client of the stated.v1 WebSocket protocol.

/** The WebSocket subprotocol the client speaks: "stated.v1". */
export declare const PROTOCOL: 'stated.v1';

/** Codes of errors the client raises itself. */
export declare const ClientCodes: Readonly<{
  CLOSED: 'closed';
  UNREACHABLE: 'unreachable';
  FRAME_TOO_BIG: 'frame_too_big';
  TURN_IN_PROGRESS: 'turn_in_progress';
  INVALID: 'invalid';
}>;

/** Error codes of the server's error frames (docs/protocol.md). */
export type ServerErrorCode =
  | 'bad_frame' | 'unknown_type' | 'not_attached' | 'session_not_found' | 'invalid'
  | 'empty_turn' | 'busy' | 'unknown_tool_call' | 'tool_results_pending'
  | 'turn_id_conflict' | 'nothing_to_answer' | 'shutting_down' | 'internal';

/** Every code a StatedError may carry. */
export type ErrorCode = ServerErrorCode | 'unauthorized' | 'forbidden'
  | (typeof ClientCodes)[keyof typeof ClientCodes];

/** The error every function of the client throws or rejects with. */
export declare class StatedError extends Error {
  constructor(code: ErrorCode | string, message?: string,
    options?: { retry?: boolean; turnId?: string; closeCode?: number });
  readonly name: 'StatedError';
  /** The protocol's error code, or one of ClientCodes. */
  readonly code: ErrorCode | string;
  /** Whether sending the same thing again later can succeed. */
  readonly retry: boolean;
  /** The turn the error is about, or ''. */
  readonly turnId: string;
  /** The WebSocket close code behind the error, or 0. */
  readonly closeCode: number;
}

/** How to reach the server and how hard to try. */
export interface ClientOptions {
  /** The server: ws(s)://host:port[/v1/ws] or http(s)://host:port. */
  url: string;
  /**
   * An API key of the server. With it, the client trades the key for a
   * single-use ticket (POST /v1/tickets) before each connection, since a browser
   * cannot set headers on a WebSocket.
   */
  apiKey?: string;
  /** Returns a fresh ticket for each connection; takes the place of apiKey. */
  ticket?: () => Promise<string> | string;
  /** A WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: new (url: string, protocol: string) => WebSocket;
  /** Interval of application-level pings. Default 20000. */
  pingIntervalMs?: number;
  /** A connection silent this long after a ping is dropped and resumed. Default 15000. */
  pongTimeoutMs?: number;
  /** Longest wait from dialing to the end of catch-up. Default 10000. */
  connectTimeoutMs?: number;
  /** How long failed reconnects go on before the session fails. Default 60000. */
  reconnectForMs?: number;
  /** First reconnect delay, doubled on each failure. Default 100. */
  backoffInitialMs?: number;
  /** Longest reconnect delay. Default 5000. */
  backoffMaxMs?: number;
}

/** A function the model may call. */
export interface Tool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  inputSchema?: unknown;
}

/** What a new session is opened with; missing fields take the server's defaults. */
export interface OpenSettings {
  model?: string;
  system?: string;
  maxTokens?: number;
  tools?: Tool[];
}

/** Where a resumed session starts from. */
export interface ResumePosition {
  sessionId: string;
  /** The epoch of the log the caller holds; 0 or absent reads the whole log. */
  epoch?: number;
  /** The last seq the caller holds; 0 or absent reads the whole log. */
  lastSeq?: number;
}

/** Provider-reported tokens of an answer, in disjoint categories. */
export interface Usage {
  input_tokens: number;
  cache_write_5m_tokens: number;
  cache_write_1h_tokens: number;
  cache_read_tokens: number;
  output_tokens: number;
}

/** A tool call of an answer; arguments is JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A durable event of a session's log, as the server sends it. */
export interface StatedEvent {
  seq: number;
  kind: 'user' | 'tool_result' | 'assistant';
  time: string;
  turn_id?: string;
  text?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  is_error?: boolean;
  tokens: number;
  model?: string;
  status?: 'complete' | 'incomplete' | 'aborted' | 'failed';
  stop_reason?: 'end_turn' | 'max_tokens' | 'tool_use' | 'other';
  usage?: Usage;
  usage_estimate?: boolean;
  cost_usd?: number;
  /** What a client that resends the whole history would have paid, when the server says. */
  naive_cost_usd?: number;
  error_code?: string;
  timing?: { added_ms: number; first_token_ms: number; total_ms: number };
  [field: string]: unknown;
}

/** A piece of a tool call in flight; id and name come with its first piece. */
export interface ToolCallPiece {
  index: number;
  id?: string;
  name?: string;
  arguments: string;
}

/** A new piece of the answer in flight, given once. */
export type Delta =
  | { seq: number; text: string; toolCall?: undefined }
  | { seq: number; toolCall: ToolCallPiece; text?: undefined };

/** The acknowledgement of one frame of a turn: it is durable at seq. */
export interface Ack {
  seq: number;
  turnId: string;
  /** The server had stored this turn ID before and did not run it again. */
  duplicate: boolean;
}

/** A tool's result, answering one tool call. */
export interface ToolResult {
  toolCallId: string;
  content?: string;
  isError?: boolean;
  turnId?: string;
}

/** The connection state of a session. */
export type SessionState = 'connecting' | 'open' | 'reconnecting' | 'failed' | 'closed';

/** One request of the client and its answer. */
export declare class Turn implements AsyncIterable<Delta> {
  private constructor();
  /** The client's turn IDs, one per frame sent. */
  readonly turnIds: string[];
  /** Resolves with the durable answer (check its status); rejects with a StatedError. */
  readonly answer: Promise<StatedEvent>;
  /** The acknowledgements received so far. */
  readonly acks: Ack[];
  /** Stops the answer; it still arrives, with status "aborted". */
  cancel(): void;
  /** Resolves with the answer's whole text. */
  text(): Promise<string>;
  [Symbol.asyncIterator](): AsyncIterator<Delta>;
}

/** Events a Session dispatches. */
export interface SessionEventMap {
  event: CustomEvent<StatedEvent>;
  delta: CustomEvent<Delta>;
  state: CustomEvent<SessionState>;
  snapshot: Event;
  error: CustomEvent<StatedError>;
}

/** One conversation on a server; it reconnects and resumes by itself. */
export declare class Session extends EventTarget {
  private constructor();
  /** Starts opening a session; add listeners, then await ready(). */
  static open(options: ClientOptions, settings?: OpenSettings): Session;
  /** Starts resuming a session; add listeners, then await ready(). */
  static resume(options: ClientOptions, position: ResumePosition): Session;
  readonly id: string;
  readonly epoch: number;
  readonly lastSeq: number;
  readonly model: string;
  readonly maxTokens: number;
  /** The durable events received, in seq order. */
  readonly history: StatedEvent[];
  readonly state: SessionState;
  /** The answer in flight as far as received, or null. */
  readonly inflight: { seq: number; text: string; toolCalls: ToolCall[] } | null;
  ready(): Promise<Session>;
  send(text: string, options?: { turnId?: string }): Turn;
  sendToolResults(results: ToolResult[]): Turn;
  retry(): Turn;
  cancel(): void;
  ping(): Promise<number>;
  reconnect(): void;
  close(): void;
  addEventListener<K extends keyof SessionEventMap>(type: K,
    listener: (ev: SessionEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SessionEventMap>(type: K,
    listener: (ev: SessionEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}

/** Opens a new session. */
export declare function openSession(options: ClientOptions, settings?: OpenSettings):
  Promise<Session>;

/** Attaches to an existing session, reading the events after position.lastSeq. */
export declare function resumeSession(options: ClientOptions, position: ResumePosition):
  Promise<Session>;

/** A new random turn ID. */
export declare function newTurnId(): string;

/**
 * A ticket function for ClientOptions.ticket that trades apiKey for a ticket at
 * the server of endpoint; a refused key rejects with `unauthorized` or `forbidden`.
 */
export declare function ticketFetcher(endpoint: string, apiKey: string): () => Promise<string>;

/** The endpoint URL for a server address. */
export declare function endpointURL(url: string): string;
