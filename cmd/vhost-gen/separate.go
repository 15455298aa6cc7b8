package main

import (
	"errors"
	"flag"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
)

// nginx-proxy's separate-containers mode: nginx runs in a container of its own, found by a label,
// and vhost-gen (in place of docker-gen) writes the config into a volume both share. vhost-gen
// takes that container's networks as the proxy's, reloads it with a signal, and, unlike
// docker-gen, checks every config with nginx -t inside it (docker exec) before it goes live.

// nginxProxyNginxLabel is the label nginx-proxy's docs put on the nginx container.
const nginxProxyNginxLabel = "com.github.nginx-proxy.nginx-proxy.nginx"

func registerSeparateFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.NginxContainerLabel, "nginx-container-label", "", "nginx-proxy's separate-containers mode: nginx runs in the container(s) with this label (`KEY` or KEY=VALUE; nginx-proxy's is "+nginxProxyNginxLabel+", and its NGINX_CONTAINER_LABEL is read too), sharing --out's directory at the same path: their networks are the proxy's, a reload signals them, and the config is checked with nginx -t in the first (docker exec)")
}

// separateEnvAliases: nginx-proxy's name for the flag.
var separateEnvAliases = map[string]string{"nginx-container-label": "NGINX_CONTAINER_LABEL"}

// applySeparate turns --nginx-container-label into the settings it stands for: the proxy's
// networks by that label, the reload by signal to those containers, unless set otherwise.
func (a *app) applySeparate() error {
	label := a.cfg.NginxContainerLabel
	if label == "" {
		return nil
	}
	if a.cfg.Proxy != "nginx" {
		return errors.New("--nginx-container-label is nginx-proxy's separate-containers mode: it needs --proxy nginx")
	}
	if a.cfg.Supervise {
		return errors.New("--nginx-container-label: nginx runs in its own container, so vhost-gen cannot --supervise it")
	}
	if len(a.cfg.ProxyNetworks.values) == 0 && a.cfg.ProxyContainer == "" && a.cfg.ProxyLabel == "" {
		a.routing.ProxyLabel = label
	}
	if a.cfg.ReloadCmd == "" && a.cfg.ReloadPidfile == "" && a.cfg.ReloadContainer == "" && a.cfg.ReloadContainerLabel == "" {
		a.cfg.ReloadContainerLabel = label
	}
	return nil
}

// separateCheck is nginx -t in the nginx container, or nil when not in that mode.
func (a *app) separateCheck() apply.CheckFunc {
	if a.cfg.NginxContainerLabel == "" {
		return nil
	}
	return apply.NginxCheckElsewhere(docker.ExecIn(a.cli, "", a.cfg.NginxContainerLabel), "nginx", "/etc/nginx/", a.confDFiles)
}
