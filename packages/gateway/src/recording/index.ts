/** Session recordings: append-only, hash-chained JSON lines, durable before statements run. */
export { genesisHash, lineHash, sealLine, verifyLines, type RecordLine, type VerifyResult } from "./chain.js";
export { PostgresResultRecorder } from "./postgres-results.js";
export { createRecorder, recordingPath, recordingSize, type Recorder, type RecorderOptions, type SessionRecording } from "./recorder.js";
