// Command kubectl-partner is the partner-operator's kubectl plugin
// (`kubectl partner`, once the binary is on the PATH). Its subcommand
// authz-config prints the kube-apiserver's AuthorizationConfiguration for the
// cluster of the current kubeconfig: the partner-operator's webhook with
// matchConditions that send it only the names under a registered partner
// domain, then Node and RBAC (docs/authorization-webhook.md).
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/roompro/partner-operator/api/v1alpha1"
	"github.com/roompro/partner-operator/internal/authzconfig"
)

func main() {
	if err := newRootCommand(os.Stdout).Execute(); err != nil {
		os.Exit(1)
	}
}

func newRootCommand(out io.Writer) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:          "kubectl-partner",
		Short:        "Operate the partner-operator of a cluster",
		SilenceUsage: true,
		// Help and usage say what a user types: kubectl finds the plugin
		// kubectl-partner on the PATH.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl partner"},
	}
	flags.AddFlags(root.PersistentFlags())

	var opts authzconfig.Options
	authz := &cobra.Command{
		Use:   "authz-config",
		Short: "Print the kube-apiserver's AuthorizationConfiguration for the registered partners",
		Long: `Print the kube-apiserver's AuthorizationConfiguration (apiserver.config.k8s.io/v1):
the partner-operator's webhook authorizer, whose matchConditions send it only
the names under the partner domains of this cluster (the PartnerOrganizations,
and any domain a PartnerLink still names), then Node and RBAC. The customer's
own staff never reach the webhook, so an outage of the operator denies them
nothing. Install the output with --authorization-config on every
kube-apiserver; it re-reads the file when it changes. Run it again after
registering or removing a partner.`,
		Example: `  kubectl partner authz-config > authorization-config.yaml.new && mv authorization-config.yaml.new authorization-config.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(flags)
			if err != nil {
				return err
			}
			return printAuthorizationConfig(cmd.Context(), c, out, opts)
		},
	}
	authz.Flags().StringVar(&opts.WebhookKubeconfig, "webhook-kubeconfig", authzconfig.DefaultWebhookKubeconfig,
		"The absolute path, on the control-plane hosts, of the kubeconfig with which the apiserver reaches the webhook.")
	root.AddCommand(authz)
	return root
}

func newClient(flags *genericclioptions.ConfigFlags) (client.Reader, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return c, nil
}

// printAuthorizationConfig reads the partner domains (every registration,
// and every link's domain, which the webhook keeps as a partner's while a
// link names it) and prints the configuration. It prints nothing when it
// cannot read them all: a configuration missing a partner would leave its
// forged names to RBAC.
func printAuthorizationConfig(ctx context.Context, c client.Reader, out io.Writer, opts authzconfig.Options) error {
	var orgs v1alpha1.PartnerOrganizationList
	if err := c.List(ctx, &orgs); err != nil {
		return fmt.Errorf("listing the PartnerOrganizations: %w", err)
	}
	var links v1alpha1.PartnerLinkList
	if err := c.List(ctx, &links); err != nil {
		return fmt.Errorf("listing the PartnerLinks of every namespace: %w", err)
	}
	var names []string
	for _, o := range orgs.Items {
		names = append(names, string(o.Spec.Domain))
	}
	for _, l := range links.Items {
		names = append(names, string(l.Spec.PartnerDomain))
	}
	domains, errs := authzconfig.Domains(names)
	if len(errs) > 0 {
		return fmt.Errorf("reading the partner domains: %w", errs.ToAggregate())
	}
	config, err := authzconfig.Render(domains, opts)
	if err != nil {
		return err
	}
	_, err = out.Write(config)
	return err
}
