import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { appOf, freeId } from "../src/app";
import { ValidationError } from "../src/errors";
import { markResource, secretInput, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { validateCertificateOptions, type CertificateUsage } from "../src/tls";

export type { CertificateUsage } from "../src/tls";

export interface CertificateAuthorityProps {
  /** The CA's subject common name. @default "drove CA <construct path>" */
  readonly commonName?: string;
  /** How long the CA certificate is valid; it is made anew (with every certificate it signed) 30 days before it expires. @default 3650 */
  readonly validityDays?: number;
}

export interface CertificateProps {
  /** The subject common name. */
  readonly commonName: string;
  /** DNS subject alternative names. @default [] */
  readonly dnsNames?: readonly string[];
  /** IP subject alternative names (IPv4 or IPv6); may be a host's address. @default [] */
  readonly ipAddresses?: readonly pulumi.Input<string>[];
  /** `server` (TLS server auth), `client` (TLS client auth), or both. */
  readonly usages: readonly CertificateUsage[];
  /** How long it is valid; it is made anew 30 days (or a third of its validity) before it expires. @default 825 */
  readonly validityDays?: number;
}

const CA = Symbol.for("drove.certificate-authority");

/** Lazily resolved outputs of a construct's resource (they exist once `app.synth()` has registered it). */
abstract class Issued extends Construct implements IResourceConstruct {
  private resolveRegistered!: (r: pulumi.CustomResource) => void;
  private readonly registered = new Promise<pulumi.CustomResource>((res) => (this.resolveRegistered = res));

  constructor(scope: Construct, id: string) {
    super(scope, freeId(scope, id));
    markResource(this);
  }

  /** The certificate, PEM. Known after the resource is created; may be read before `app.synth()`. */
  get certPem(): pulumi.Output<string> {
    if (appOf(this).synthOut !== undefined) return pulumi.output("(known after create)");
    return pulumi.output(this.registered).apply((r) => (r as unknown as { certPem: pulumi.Output<string> }).certPem);
  }

  /** The private key, PEM (PKCS#8). Always a Pulumi secret. */
  get keyPem(): pulumi.Output<string> {
    if (appOf(this).synthOut !== undefined) return secretInput("(known after create)");
    return pulumi.secret(pulumi.output(this.registered).apply((r) => (r as unknown as { keyPem: pulumi.Output<string> }).keyPem));
  }

  /** Expiry of the certificate (ISO 8601). */
  get notAfter(): pulumi.Output<string> {
    if (appOf(this).synthOut !== undefined) return pulumi.output("(known after create)");
    return pulumi.output(this.registered).apply((r) => (r as unknown as { notAfter: pulumi.Output<string> }).notAfter);
  }

  /** @internal Called by App.synth once the resource is registered. */
  _registered(r: pulumi.CustomResource): void {
    this.resolveRegistered(r);
  }

  /** @internal */
  abstract _toSpec(): ResourceSpec;
}

/**
 * A certificate authority drove makes and keeps: a self-signed ECDSA P-256
 * CA certificate and its key, made by drove's provider at create (no machine
 * involved), the key a secret in Pulumi's state. It signs the certificates
 * of `ca.issue(...)`.
 *
 * @example
 * const ca = new CertificateAuthority(app, "ca", { commonName: "lab CA" });
 * const tls = ca.issue("registry", { commonName: "m1", ipAddresses: [m1.address], usages: ["server"] });
 * m1.addFile("cert", { path: "/etc/ssl/registry.crt", content: tls.certPem });
 */
export class CertificateAuthority extends Issued {
  /** True for a CertificateAuthority, across package copies. */
  static isCertificateAuthority(x: unknown): x is CertificateAuthority {
    return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[CA] === true;
  }

  readonly commonName: string;
  readonly validityDays: number;

  constructor(scope: Construct, id: string, props: CertificateAuthorityProps = {}) {
    super(scope, freeId(scope, id));
    Object.defineProperty(this, CA, { value: true });
    this.commonName = props.commonName ?? `drove CA ${this.node.path}`.slice(0, 64);
    this.validityDays = props.validityDays ?? 3650;
    const errors = validateCertificateOptions({ commonName: this.commonName, validityDays: this.validityDays });
    if (errors.length) throw new ValidationError(errors.map((e) => `${this.node.path}: ${e}`));
  }

  /** Issues a certificate signed by this CA; returns it. */
  issue(id: string, props: CertificateProps): Certificate {
    return new Certificate(this, id, { ...props, ca: this });
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:CertificateAuthority",
      props: { commonName: this.commonName, validityDays: this.validityDays },
      outputs: ["certPem", "keyPem", "notAfter", "fingerprint"],
    };
  }
}

/**
 * A certificate with its own new key, signed by a drove CertificateAuthority.
 * Made anew when its subject, SANs or usages change, when its CA is made anew,
 * or 30 days before it expires. Create it with `ca.issue(...)`.
 */
export class Certificate extends Issued {
  readonly ca: CertificateAuthority;
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly pulumi.Input<string>[];
  readonly usages: readonly CertificateUsage[];
  readonly validityDays: number;

  constructor(scope: Construct, id: string, props: CertificateProps & { readonly ca: CertificateAuthority }) {
    super(scope, freeId(scope, id));
    if (!CertificateAuthority.isCertificateAuthority(props.ca)) {
      throw new ValidationError([`${this.node.path}: a Certificate is issued by a CertificateAuthority (ca.issue(...))`]);
    }
    const errors = validateCertificateOptions({
      commonName: props.commonName,
      dnsNames: props.dnsNames,
      ipAddresses: (props.ipAddresses ?? []).filter((ip): ip is string => typeof ip === "string"),
      usages: props.usages ?? [],
      validityDays: props.validityDays,
    });
    if (errors.length) throw new ValidationError(errors.map((e) => `${this.node.path}: ${e}`));
    this.ca = props.ca;
    this.commonName = props.commonName;
    this.dnsNames = [...(props.dnsNames ?? [])];
    this.ipAddresses = [...(props.ipAddresses ?? [])];
    this.usages = [...new Set(props.usages)];
    this.validityDays = props.validityDays ?? 825;
  }

  /** The CA's certificate (PEM), for whoever verifies this certificate. */
  get caCertPem(): pulumi.Output<string> {
    return this.ca.certPem;
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:Certificate",
      dependsOn: [this.ca],
      props: {
        caCertPem: this.ca.certPem,
        caKeyPem: this.ca.keyPem,
        commonName: this.commonName,
        dnsNames: [...this.dnsNames],
        ipAddresses: [...this.ipAddresses],
        usages: [...this.usages],
        validityDays: this.validityDays,
      },
      outputs: ["certPem", "keyPem", "notAfter", "fingerprint"],
    };
  }
}
