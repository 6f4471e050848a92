export { App, type AppProps } from "./app";
export { DroveError, HostError, ValidationError } from "./errors";
export { loadInventory, type Inventory, type InventoryMachine } from "./inventory";
export { quote, sh } from "./quote";
export { Host, type HostProps } from "../constructs/host";
export { File, type FileProps } from "../constructs/file";
export { Package, type PackageProps } from "../constructs/package";
export { Directory, type DirectoryProps } from "../constructs/directory";
export { SystemdUnit, type SystemdUnitProps, type UnitSection, type UnitSections, type UnitValue } from "../constructs/systemd-unit";
export { ContainerRuntime, type ContainerEngine, type ContainerRuntimeProps } from "../constructs/container-runtime";
export { Container, type ContainerProps, type PortMappingProps, type VolumeMountProps } from "../constructs/container";
export { Network, type NetworkProps } from "../constructs/network";
export { Volume, type VolumeProps, type HostPathMount } from "../constructs/volume";
export { Image, type ImageProps } from "../constructs/image";
export { CertificateAuthority, Certificate, type CertificateAuthorityProps, type CertificateProps, type CertificateUsage } from "../constructs/certificate";
export { createCa, issueCertificate, certificateInfo, type CertificateInfo, type KeyPair } from "./tls";
export { Cluster, EtcdControlPlane, type AddHostOptions, type ClusterNode, type ClusterProps, type Orchestrator, ETCD_KEY_PREFIX, clusterKeyPrefix, servicesKeyPrefix, serviceEndpointsPrefix, serviceEndpointKey } from "../constructs/cluster";
export { Service, type ServiceProps, type ServicePortProps, type HealthCheckProps, type PlacementProps, type MatchExpression } from "../constructs/service";
export { Registry, RegistryTrust, RegistryCredentials, type RegistryProps } from "../constructs/registry";

// @pulumi/pulumi 3.248 logs secrets at debug level; drove keeps them out (see the file).
import "./sdk-debug-log";
export { Attestation, type AttestationProps } from "../constructs/attestation";
export { OsImage, HostImage, type OsImageProps, type OsImageUser, type OsImageUnit, type OsImageFile, type OsImageHealth } from "../constructs/os-image";
