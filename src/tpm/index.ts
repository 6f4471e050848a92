/** TPM 2.0 remote attestation: quote verification and the registrar's MakeCredential (see verify.ts, credential.ts). */
export * from "./structures";
export * from "./verify";
export { kdfa, makeCredential, parseToolsCredentialFile, toolsCredentialFile, type MadeCredential } from "./credential";
