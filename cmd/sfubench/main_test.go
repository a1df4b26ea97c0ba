package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"gatehouse/cmd/sfubench/internal/sfubench"
)

func TestParseRunFlags(t *testing.T) {
	const (
		mtxWHIP = "http://127.0.0.1:8889/{path}/whip"
		mtxWHEP = "http://127.0.0.1:8889/{path}/whep"
	)
	gatehouse := sfubench.Target{Name: "gatehouse", Builtin: sfubench.ModeGatehouse, WHIPBearer: "sfubench", WHEPBearer: "sfubench", Markers: "frame"}
	naive := sfubench.Target{Name: "naive", Builtin: sfubench.ModeNaive, WHIPBearer: "sfubench", WHEPBearer: "sfubench", Markers: "frame"}
	mediamtx := sfubench.Target{Name: "mediamtx", WHIPURL: mtxWHIP, WHEPURL: mtxWHEP, PID: 42, Markers: "frame"}
	tests := []struct {
		name      string
		args      []string
		targets   []sfubench.Target
		workloads []sfubench.Workload
		n         []int
		ref       string
		wantErr   string
	}{
		{name: "defaults", args: nil, targets: []sfubench.Target{gatehouse, naive},
			workloads: []sfubench.Workload{"fanout"}, n: []int{1, 10, 50, 100, 200}, ref: "naive"},
		{name: "modes and workloads", args: []string{"-modes", "naive", "-workloads", "room,simulcast", "-n", "2, 5", "-markers", "packet"},
			targets:   []sfubench.Target{func() sfubench.Target { t := naive; t.Markers = "packet"; return t }()},
			workloads: []sfubench.Workload{"room", "simulcast"}, n: []int{2, 5}, ref: "naive"},
		{name: "target specs", args: []string{"-n", "10",
			"-target", "name=gatehouse,start=builtin",
			"-target", "name=mediamtx,whip=" + mtxWHIP + ",whep=" + mtxWHEP + ",pid=42"},
			targets: []sfubench.Target{gatehouse, mediamtx}, workloads: []sfubench.Workload{"fanout"}, n: []int{10}, ref: "gatehouse"},
		{name: "custom builtin name, bearer, children, packet markers, net", args: []string{"-n", "3",
			"-target", "name=base,mode=naive,markers=packet",
			"-target", "name=bb,whip=http://10.0.0.5:8080/api/whip?s={path},whep=http://10.0.0.5:8080/api/whep?s={path},pid=7,children=true,bearer=tok,whep-bearer=view,net=loopback",
			"-ref", "bb"},
			targets: []sfubench.Target{
				{Name: "base", Builtin: sfubench.ModeNaive, WHIPBearer: "sfubench", WHEPBearer: "sfubench", Markers: "packet"},
				{Name: "bb", WHIPURL: "http://10.0.0.5:8080/api/whip?s={path}", WHEPURL: "http://10.0.0.5:8080/api/whep?s={path}",
					PID: 7, Children: true, WHIPBearer: "tok", WHEPBearer: "view", Markers: "frame"},
			}, workloads: []sfubench.Workload{"fanout"}, n: []int{3}, ref: "bb"},
		{name: "external flags alone", args: []string{"-n", "10", "-whip-url", "http://192.0.2.1:8889/{path}/whip",
			"-whep-url", "http://192.0.2.1:8889/{path}/whep", "-pid", "42", "-name", "mediamtx", "-whip-bearer", "pub"},
			targets: []sfubench.Target{{Name: "mediamtx", WHIPURL: "http://192.0.2.1:8889/{path}/whip",
				WHEPURL: "http://192.0.2.1:8889/{path}/whep", PID: 42, WHIPBearer: "pub", Markers: "frame", AllInterfaces: true}},
			workloads: []sfubench.Workload{"fanout"}, n: []int{10}, ref: "mediamtx"},
		{name: "external flags with explicit modes", args: []string{"-n", "10", "-modes", "gatehouse,naive",
			"-whip-url", mtxWHIP, "-whep-url", mtxWHEP, "-pid", "42", "-name", "mediamtx"},
			targets: []sfubench.Target{gatehouse, naive, mediamtx}, workloads: []sfubench.Workload{"fanout"}, n: []int{10}, ref: "naive"},
		{name: "edge workload against gatehouse", args: []string{"-workloads", "edge", "-modes", "gatehouse", "-n", "100"},
			targets: []sfubench.Target{gatehouse}, workloads: []sfubench.Workload{"edge"}, n: []int{100}, ref: "gatehouse"},

		{name: "external without pid", args: []string{"-whip-url", mtxWHIP, "-whep-url", mtxWHEP}, wantErr: "needs whip=, whep= and pid="},
		{name: "template without path", args: []string{"-whip-url", "http://h/whip", "-whep-url", mtxWHEP, "-pid", "1"}, wantErr: "has no {path}"},
		{name: "key in the bearer token (Broadcast Box)", args: []string{"-n", "2", "-target",
			"name=bb,whip=http://127.0.0.1:8080/api/whip,whep=http://127.0.0.1:8080/api/whep,bearer={key},pid=9"},
			targets: []sfubench.Target{{Name: "bb", WHIPURL: "http://127.0.0.1:8080/api/whip", WHEPURL: "http://127.0.0.1:8080/api/whep",
				WHIPBearer: "{key}", WHEPBearer: "{key}", PID: 9, Markers: "frame"}},
			workloads: []sfubench.Workload{"fanout"}, n: []int{2}, ref: "bb"},
		{name: "not http", args: []string{"-whip-url", "ftp://h/{path}", "-whep-url", mtxWHEP, "-pid", "1"}, wantErr: "not an http(s) URL"},
		{name: "bearer without external", args: []string{"-bearer", "x"}, wantErr: "belong to a -whip-url"},
		{name: "unknown target key", args: []string{"-target", "name=x,colour=red"}, wantErr: `unknown key "colour"`},
		{name: "target without name", args: []string{"-target", "mode=naive"}, wantErr: "needs name="},
		{name: "builtin with unknown name", args: []string{"-target", "name=foo,start=builtin"}, wantErr: "needs mode="},
		{name: "builtin with url", args: []string{"-target", "name=naive,start=builtin,whip=" + mtxWHIP}, wantErr: "takes no whip"},
		{name: "bad start", args: []string{"-target", "name=x,start=docker"}, wantErr: "want builtin"},
		{name: "bad pid", args: []string{"-target", "name=x,whip=" + mtxWHIP + ",whep=" + mtxWHEP + ",pid=-3"}, wantErr: "not a process id"},
		{name: "bad markers", args: []string{"-target", "name=naive,start=builtin,markers=bytes"}, wantErr: "want frame or packet"},
		{name: "bad net", args: []string{"-target", "name=naive,start=builtin,net=wifi"}, wantErr: "want loopback or all"},
		{name: "duplicate names", args: []string{"-target", "name=naive,start=builtin", "-target", "name=naive,start=builtin"}, wantErr: "two targets"},
		{name: "room of one", args: []string{"-workloads", "room", "-n", "1,10"}, wantErr: "at least 2"},
		{name: "bad workload", args: []string{"-workloads", "mesh"}, wantErr: "unknown workload"},
		{name: "bad n", args: []string{"-n", "0"}, wantErr: "bad -n"},
		{name: "unknown ref", args: []string{"-ref", "mediamtx"}, wantErr: "not a target"},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected argument"},
		{name: "edge workload with the default modes", args: []string{"-workloads", "edge"}, wantErr: "only against builtin gatehouse targets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseRunFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err: got %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err: %v", err)
			}
			if !reflect.DeepEqual(c.targets, tt.targets) {
				t.Errorf("targets:\n got %+v\nwant %+v", c.targets, tt.targets)
			}
			if !reflect.DeepEqual(c.workloads, tt.workloads) || !reflect.DeepEqual(c.n, tt.n) || c.ref != tt.ref {
				t.Errorf("workloads %v n %v ref %q, want %v %v %q", c.workloads, c.n, c.ref, tt.workloads, tt.n, tt.ref)
			}
		})
	}
}

func TestRunHelpDocumentsTargets(t *testing.T) {
	var b strings.Builder
	_, err := parseRunFlags([]string{"-h"}, &b)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err: got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-target", "whip=URL", "pid=N", "markers=frame|packet", "simulcast", "room/bench/p<i>", "-pin-external", "{path}"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help has no %q", want)
		}
	}
}
