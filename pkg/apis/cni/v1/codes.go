package cniv1

// CNI error codes carried in Error.Code and printed by the plugin as the
// "code" of a CNI JSON error. Codes below 100 are the CNI specification's
// (they have the same values as containernetworking/cni's types.Err*
// constants); codes from 100 are antrea's own, for failures inside the agent.
const (
	// CodeIncompatibleCNIVersion: the config's cniVersion is not supported,
	// or does not allow the command (CHECK needs >= 0.4.0, GC and STATUS
	// need >= 1.1.0).
	CodeIncompatibleCNIVersion uint = 1
	// CodeUnsupportedField: a config field has a value the plugin does not
	// support.
	CodeUnsupportedField uint = 2
	// CodeUnknownContainer: the container (or its attachment) does not
	// exist. The plugin treats it as success for DEL.
	CodeUnknownContainer uint = 3
	// CodeInvalidEnvironmentVariables: a CNI_* variable (including the
	// K8S_* pairs of CNI_ARGS) is missing or malformed.
	CodeInvalidEnvironmentVariables uint = 4
	// CodeIOFailure: reading stdin or writing stdout failed.
	CodeIOFailure uint = 5
	// CodeDecodingFailure: the network config is not valid JSON.
	CodeDecodingFailure uint = 6
	// CodeInvalidNetworkConfig: the network config is valid JSON but a
	// field is missing or invalid.
	CodeInvalidNetworkConfig uint = 7
	// CodeInvalidNetNS: the netns is not usable.
	CodeInvalidNetNS uint = 8
	// CodeTryAgainLater: a transient failure, such as an agent that is not
	// reachable or not ready; the runtime should retry.
	CodeTryAgainLater uint = 11
	// CodePluginNotAvailable (STATUS only): the plugin cannot serve ADDs,
	// for example because the agent is not reachable.
	CodePluginNotAvailable uint = 50
	// CodeLimitedConnectivity (STATUS only): ADDs work but new pods would
	// have limited connectivity.
	CodeLimitedConnectivity uint = 51
	// CodeNoIPAddresses (STATUS only): no IP addresses are available.
	CodeNoIPAddresses uint = 52
	// CodeInsufficientAddressSpace (STATUS only): IP address space is low.
	CodeInsufficientAddressSpace uint = 53

	// CodeAgentInternal: the agent failed for a reason it did not classify.
	// A plain Go error from the agent's PodConfigurator gets this code.
	CodeAgentInternal uint = 100
	// CodeAgentProtocol: the plugin and the agent do not understand each
	// other (unexpected gRPC status, missing or undecodable result).
	CodeAgentProtocol uint = 101
	// CodeIPAMFailure: allocating or releasing the pod's IP addresses
	// failed.
	CodeIPAMFailure uint = 102
	// CodeInterfaceFailure: creating or configuring the pod's interface
	// (veth pair, addresses, routes in the netns) failed.
	CodeInterfaceFailure uint = 103
	// CodeOVSFailure: creating the OVS port or installing its flows failed.
	CodeOVSFailure uint = 104
	// CodeOperationTimeout: the agent gave up on the operation after its
	// own deadline.
	CodeOperationTimeout uint = 105
)
