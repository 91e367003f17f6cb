package ovsdbtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"

	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
)

// localPortOFPort is the OpenFlow number of a bridge's local port.
const localPortOFPort = 65534

// EnsurePort creates or updates a port and assigns its OpenFlow number:
// the requested one if no other port uses it, else the lowest free one.
func (f *Fake) EnsurePort(_ context.Context, cfg ovsdb.PortConfig) (int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("EnsurePort"); err != nil {
		return 0, err
	}
	if cfg.Name == "" {
		return 0, errors.New("ensure port: empty port name")
	}
	what := "ensure port " + cfg.Name
	if cfg.Type == "system" {
		cfg.Type = ""
	}
	if err := f.checkType(cfg.Type); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if f.bridge == nil {
		return 0, fmt.Errorf("%s: bridge %s does not exist", what, f.name)
	}
	cfg.Options = maps.Clone(cfg.Options)
	cfg.ExternalIDs = maps.Clone(cfg.ExternalIDs)
	p, exists := f.ports[cfg.Name]
	// Like ovs-vswitchd, retry an interface whose error has been cleared.
	if exists && samePortConfig(p.cfg, cfg) && p.info.Error == f.portErrors[cfg.Name] {
		return portResult(p.info)
	}
	f.transactions++
	if !exists {
		p = &fakePort{}
		f.ports[cfg.Name] = p
	}
	ofport := p.info.OFPort
	if ofport <= 0 || (cfg.OFPortRequest != 0 && cfg.OFPortRequest != ofport) {
		ofport = f.allocOFPort(cfg.Name, cfg.OFPortRequest)
	}
	p.cfg = cfg
	p.info = ovsdb.PortInfo{
		Name: cfg.Name, Type: cfg.Type, OFPort: ofport, OFPortRequest: cfg.OFPortRequest, MTURequest: cfg.MTURequest,
		Options: maps.Clone(cfg.Options), ExternalIDs: maps.Clone(cfg.ExternalIDs),
		MAC: fmt.Sprintf("00:00:00:00:%02x:%02x", ofport>>8&0xff, ofport&0xff),
	}
	if cfg.MAC != "" {
		p.info.MAC = cfg.MAC
	}
	if msg, ok := f.portErrors[cfg.Name]; ok {
		p.info.OFPort, p.info.MAC, p.info.Error = -1, "", msg
	}
	return portResult(p.info)
}

// portResult is what EnsurePort returns for a port in state info.
func portResult(info ovsdb.PortInfo) (int32, error) {
	if info.OFPort > 0 {
		return info.OFPort, nil
	}
	return 0, fmt.Errorf("ensure port %s: OVS failed to set up interface %s: %s", info.Name, info.Name, info.Error)
}

func samePortConfig(a, b ovsdb.PortConfig) bool {
	return a.Name == b.Name && a.Type == b.Type && a.OFPortRequest == b.OFPortRequest && a.MTURequest == b.MTURequest &&
		maps.Equal(a.Options, b.Options) && maps.Equal(a.ExternalIDs, b.ExternalIDs)
}

// allocOFPort returns request if no other port has it, else the lowest
// number that no other port has or requests; f.mu is held.
func (f *Fake) allocOFPort(name string, request int32) int32 {
	taken := map[int32]bool{localPortOFPort: true}
	for n, p := range f.ports {
		if n == name {
			continue
		}
		taken[p.info.OFPort] = true
		taken[p.cfg.OFPortRequest] = true
	}
	if request > 0 && !taken[request] {
		return request
	}
	for n := int32(1); ; n++ {
		if !taken[n] {
			return n
		}
	}
}

// DeletePort deletes a port; a missing port is not an error.
func (f *Fake) DeletePort(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("DeletePort"); err != nil {
		return err
	}
	if _, ok := f.ports[name]; !ok {
		return nil
	}
	delete(f.ports, name)
	f.transactions++
	return nil
}

// GetPort returns a copy of a port.
func (f *Fake) GetPort(_ context.Context, name string) (ovsdb.PortInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("GetPort"); err != nil {
		return ovsdb.PortInfo{}, false, err
	}
	p, ok := f.ports[name]
	if !ok {
		return ovsdb.PortInfo{}, false, nil
	}
	return copyInfo(p.info), true, nil
}

// ListPorts returns copies of all ports, sorted by name.
func (f *Fake) ListPorts(_ context.Context) ([]ovsdb.PortInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injectedError("ListPorts"); err != nil {
		return nil, err
	}
	if f.bridge == nil {
		return nil, fmt.Errorf("list ports: bridge %s does not exist", f.name)
	}
	infos := make([]ovsdb.PortInfo, 0, len(f.ports))
	for _, p := range f.ports {
		infos = append(infos, copyInfo(p.info))
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

func copyInfo(info ovsdb.PortInfo) ovsdb.PortInfo {
	info.Options = maps.Clone(info.Options)
	info.ExternalIDs = maps.Clone(info.ExternalIDs)
	return info
}
