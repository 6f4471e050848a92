import { X509Certificate } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { appOf, freeId } from "../src/app";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { Host } from "./host";

const BANKS = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 } as const;

export interface AttestationProps {
  /**
   * The PCRs each quote covers and the policy checks, 0 to 23.
   * @default [0, 1, 2, 3, 4, 5, 6, 7] (firmware and boot loader measurements)
   */
  readonly pcrs?: readonly number[];
  /**
   * The PCR bank quoted.
   * @default "sha256"
   */
  readonly bank?: keyof typeof BANKS;
  /**
   * Expected PCR values, hex by PCR index (each PCR named here must be in
   * `pcrs`). A quote whose PCR differs refuses the host, naming the PCR with
   * expected and found. Give this or `trustOnFirstUse`.
   * @default - none
   */
  readonly golden?: Readonly<Record<number, string>>;
  /**
   * Take the PCR values of the first quote (at enrolment) as the golden
   * values; any later change refuses the host. Give this or `golden`.
   * @default false
   */
  readonly trustOnFirstUse?: boolean;
  /**
   * How long a passed attestation counts, in seconds; an older one (a run
   * without refresh) counts as failed.
   * @default 3600
   */
  readonly maxAgeSeconds?: number;
  /**
   * The attestation key's type: RSA 2048 (RSASSA) or ECC P-256 (ECDSA), both with SHA-256.
   * @default "rsa"
   */
  readonly keyType?: "rsa" | "ecc";
  /**
   * The CA certificate(s), PEM, that may issue the TPM's EK certificate (the
   * TPM maker's, or swtpm's local CA in the lab). Enrolment then requires an
   * EK certificate issued by one of them, as Keylime's registrar does.
   * @default - an EK certificate, where the TPM has one, must certify its EK; its issuer is not checked
   */
  readonly ekCa?: string | readonly string[];
  /**
   * The TPM persistent handle where the attestation key is kept (owner hierarchy).
   * @default 0x81018d00
   */
  readonly akHandle?: number;
}

/**
 * TPM remote attestation of a host, as Keylime does it. Enrolment makes an
 * attestation key (AK) under the TPM's endorsement key (EK) and proves the
 * binding with MakeCredential/ActivateCredential; only public data (EK name,
 * AK public and name) is kept in the state. Every refresh and update verifies
 * a quote for a fresh nonce: signature by the AK, nonce, TPM clock later than
 * the last accepted quote, PCR digest, and the PCR values against the golden
 * ones. A host that fails is not admitted: the preview says which PCR
 * differed, expected and found.
 *
 * @example
 * new Attestation(host, "attestation", { trustOnFirstUse: true });
 */
export class Attestation extends Construct implements IResourceConstruct {
  /** The Attestation of a host, if it has one. */
  static of(host: Host): Attestation | undefined {
    return host.node.children.find((c): c is Attestation => c instanceof Attestation);
  }

  readonly host: Host;
  readonly pcrs: readonly number[];
  readonly bank: keyof typeof BANKS;
  readonly trustOnFirstUse: boolean;
  readonly maxAgeSeconds: number;
  readonly keyType: "rsa" | "ecc";
  readonly akHandle: number;
  readonly ekCa: readonly string[] | undefined;
  private readonly _golden: Readonly<Record<number, string>> | undefined;

  constructor(scope: Construct, id: string, props: AttestationProps = {}) {
    super(scope, freeId(scope, id));
    markResource(this);
    const where = this.node.path;
    const host = Host.of(scope);
    if (!host) throw new ValidationError([`${where}: an Attestation must be created inside a Host (new Attestation(host, "attestation", ...))`]);
    const errors: string[] = [];
    const pcrs = props.pcrs ?? [0, 1, 2, 3, 4, 5, 6, 7];
    if (pcrs.length === 0 || pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23)) {
      errors.push(`${where}: \`pcrs\` must be PCR indices from 0 to 23, but ${JSON.stringify(pcrs)} was provided`);
    } else if (new Set(pcrs).size !== pcrs.length) errors.push(`${where}: \`pcrs\` names a PCR twice: ${JSON.stringify(pcrs)}`);
    const bank = props.bank ?? "sha256";
    if (!(bank in BANKS)) errors.push(`${where}: \`bank\` must be one of ${Object.keys(BANKS).join(", ")}, but ${JSON.stringify(bank)} was provided`);
    const tofu = props.trustOnFirstUse ?? false;
    if (props.golden !== undefined && tofu) errors.push(`${where}: give either \`golden\` or \`trustOnFirstUse\`, not both`);
    if (props.golden === undefined && !tofu) {
      errors.push(`${where}: give \`golden\` PCR values (hex by PCR index, as \`tpm2_pcrread ${bank}:${pcrs.join(",")}\` prints them on a machine you trust), or set \`trustOnFirstUse: true\``);
    }
    const digits = (BANKS[bank] ?? 32) * 2;
    for (const [k, v] of Object.entries(props.golden ?? {})) {
      if (!pcrs.includes(Number(k))) errors.push(`${where}: \`golden\` has a value for PCR ${k}, which is not in \`pcrs\` ${JSON.stringify(pcrs)}; add ${k} to \`pcrs\` or remove the value`);
      if (typeof v !== "string" || !new RegExp(`^(0x)?[0-9a-fA-F]{${digits}}$`).test(v)) {
        errors.push(`${where}: \`golden\` value for PCR ${k} must be ${digits} hex digits (a ${bank} digest), but ${JSON.stringify(v)} was provided`);
      }
    }
    const maxAge = props.maxAgeSeconds ?? 3600;
    if (!Number.isInteger(maxAge) || maxAge < 1) errors.push(`${where}: \`maxAgeSeconds\` must be a whole number of seconds, at least 1, but ${JSON.stringify(props.maxAgeSeconds)} was provided`);
    const keyType = props.keyType ?? "rsa";
    if (keyType !== "rsa" && keyType !== "ecc") errors.push(`${where}: \`keyType\` must be "rsa" or "ecc", but ${JSON.stringify(keyType)} was provided`);
    const handle = props.akHandle ?? 0x81018d00;
    if (!Number.isInteger(handle) || handle < 0x81000000 || handle > 0x81ffffff) {
      errors.push(`${where}: \`akHandle\` must be a persistent handle from 0x81000000 to 0x81ffffff, but ${JSON.stringify(props.akHandle)} was provided`);
    } else if (handle >= 0x81010000 && handle <= 0x810100ff) {
      errors.push(`${where}: \`akHandle\` 0x${handle.toString(16)} is in the range the TCG reserves for endorsement keys; use one like 0x81018d00`);
    }
    const ekCa = props.ekCa === undefined ? undefined : typeof props.ekCa === "string" ? [props.ekCa] : [...props.ekCa];
    ekCa?.forEach((pem, n) => {
      try {
        new X509Certificate(pem);
      } catch {
        errors.push(`${where}: \`ekCa\` entry ${n} is not a PEM certificate (-----BEGIN CERTIFICATE-----...)`);
      }
    });
    if (ekCa?.length === 0) errors.push(`${where}: \`ekCa\` is empty; give at least one CA certificate, or leave it out`);
    if (errors.length) throw new ValidationError(errors);
    this.host = host;
    this.ekCa = ekCa;
    this.pcrs = [...pcrs].sort((a, b) => a - b);
    this.bank = bank;
    this.trustOnFirstUse = tofu;
    this.maxAgeSeconds = maxAge;
    this.keyType = keyType;
    this.akHandle = handle;
    this._golden = props.golden ? Object.fromEntries(Object.entries(props.golden).map(([k, v]) => [Number(k), v.toLowerCase().replace(/^0x/, "")])) : undefined;
    this.node.addValidation({
      validate: () => {
        const twins = this.host.node.findAll().filter((c) => c instanceof Attestation && c !== this && Host.of(c) === this.host);
        return twins.length ? [`${this.host.node.path} has more than one Attestation (${[this, ...twins].map((t) => t.node.path).join(", ")}); a TPM is attested once`] : [];
      },
    });
  }

  /** A copy of the golden values (undefined with trust on first use). */
  get golden(): Record<number, string> | undefined {
    return this._golden ? { ...this._golden } : undefined;
  }

  private settle?: (r: { admitted: pulumi.Output<boolean> }) => void;
  private readonly registered = new Promise<{ admitted: pulumi.Output<boolean> }>((resolve) => (this.settle = resolve));

  /**
   * @internal Whether the host passed, for other constructs' specs, which are
   * rendered before any resource exists: it resolves once this one's resource
   * is registered and has run, so a resource taking it as an input is planned
   * after this run's check of the host.
   */
  get _admission(): pulumi.Output<boolean> {
    return pulumi.output(this.registered).apply((r) => r.admitted);
  }

  /** @internal */
  _registered(r: pulumi.CustomResource): void {
    this.settle?.(r as unknown as { admitted: pulumi.Output<boolean> });
  }

  /** @internal Under `drove synth` nothing is registered: the admission is known only after apply. */
  _unregistered(): void {
    this.settle?.({ admitted: pulumi.output("(known after apply)" as unknown as boolean) });
  }

  /** Whether the host passed its last attestation (known after `app.synth()`). */
  get admitted(): pulumi.Output<boolean> {
    const res = appOf(this)._resourceOf(this) as unknown as { admitted?: pulumi.Output<boolean> } | undefined;
    if (!res?.admitted) throw new ValidationError([`${this.node.path}: admitted is known only after app.synth()`]);
    return res.admitted;
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Attestation",
      parent: this.host,
      props: {
        connection: this.host.connection,
        host: this.host.node.path,
        pcrs: [...this.pcrs],
        bank: this.bank,
        ...(this._golden ? { golden: Object.fromEntries(Object.entries(this._golden).map(([k, v]) => [String(k), v])) } : {}),
        trustOnFirstUse: this.trustOnFirstUse,
        maxAgeSeconds: this.maxAgeSeconds,
        keyType: this.keyType,
        akHandle: `0x${this.akHandle.toString(16)}`,
        ...(this.ekCa ? { ekCa: [...this.ekCa] } : {}),
      },
      outputs: ["admitted", "akName", "ekName", "ekCertificate", "pcrValues", "verifiedAt", "refusal"],
    };
  }
}
