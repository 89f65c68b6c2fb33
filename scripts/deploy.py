"""`ape run deploy`: deploy the whole system and write `deployments/<network>.json`."""

from __future__ import annotations

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand, account_option

from margin_maintenance.deployment import (
    connected_network,
    deployment_from_system,
    record_path,
    save_deployment,
)
from margin_maintenance.system import SystemParams, deploy_system


@click.command(cls=ConnectedProviderCommand, short_help="Deploy the system, write the record")
@account_option(prompt=False)
@click.option(
    "--guardian",
    default=None,
    help="Address that may pause new risk (default: the deployer).",
)
@click.option(
    "--deployments-dir",
    "out_dir",
    default=None,
    envvar="MM_DEPLOYMENTS_DIR",
    help="Folder for the record (default: deployments/ in the repo; env MM_DEPLOYMENTS_DIR).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing record on a live network.")
@click.option(
    "--signed-prices",
    is_flag=True,
    help="Markets read signed prices (SignedPriceFeed over each push feed; see attest).",
)
def cli(
    provider, account, guardian: str | None, out_dir: str | None, force: bool, signed_prices: bool
) -> None:
    """Deploy mock USDC, mock aggregators, feed adapters, the LP vault, the configurator, the
    clearinghouse and its lens with the default SystemParams (ETH-USD at 2,000 and BTC-USD at
    60,000), and write the deployment record. On local networks the deployer defaults to the
    first test account; elsewhere pass --account."""
    if account is None:
        if not provider.network.is_dev:
            raise click.UsageError("--account is required on a live network")
        account = accounts.test_accounts[0]
    network = connected_network()
    if record_path(network, out_dir).exists() and not provider.network.is_dev and not force:
        raise click.UsageError(f"{record_path(network, out_dir)} exists; pass --force to replace")
    click.echo(f"deploying on {provider.network.choice} (record {network!r}) from {account}")
    params = SystemParams(signed_prices=signed_prices)
    system = deploy_system(project, account, guardian or account, params, lens=True)
    dep = deployment_from_system(system, network, chain.chain_id, account, guardian or account)
    path = save_deployment(dep, out_dir)
    click.echo(f"chain id       {dep.chain_id}  (start block {dep.start_block})")
    click.echo(f"clearinghouse  {dep.clearinghouse}")
    click.echo(f"configurator   {dep.configurator}")
    click.echo(f"lp vault       {dep.lp_token}  (the LP share token; approve the clearinghouse)")
    if system.lens is not None:
        click.echo(f"lens           {system.lens.address}")
    click.echo(f"price verifier {dep.price_verifier}  (signers {params.signers})")
    click.echo(f"collateral     {dep.collateral.address}  ({dep.collateral.decimals} decimals)")
    for m in dep.markets:
        click.echo(f"market {m.id} {m.symbol:<8} aggregator {m.aggregator}  feed {m.feed}")
    click.echo(f"wrote {path}")
