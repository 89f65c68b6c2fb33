// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAggregator, IConfigurator, IEngine, IToken, IVault, IVerifier, vm} from "./Interfaces.sol";

/// The system the campaign drives, deployed from the Vyper build (bytecode/, exported from
/// Ape's manifest by `python -m margin_maintenance.campaign`) with the defaults of
/// `margin_maintenance.system.SystemParams`: a 6-decimal token, ETH-USD at 2,000 and BTC-USD
/// at 60,000, im 10%, mm 5%, liquidation fee 1%, trading fee 5 bps, a 2-hour stale window with
/// a 5% haircut, keeper share 50%, partial bound 80%, minimum reward 1 token, reserve 10%.
/// The deployer (the handler) owns the token, the aggregators and the configurator, and is
/// the guardian.
abstract contract World {
    uint256 internal constant USDC = 1e6;
    uint256 internal constant WAD = 1e18;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant N_MARKETS = 2;
    uint256 internal constant HEARTBEAT = 3_600;
    uint256 internal constant STALE_WINDOW = 7_200;
    uint256 internal constant SIGNED_MARKET = 0; // ETH reads signed prices too
    uint256 internal constant SIGNER_KEY = 0xA11CE; // the three signers' keys: this, +1, +2
    uint256 internal constant SIGNED_TRADE_AGE = 60;
    uint256 internal constant SIGNED_MAX_AGE = 120;
    bytes32 internal constant ETH_FEED_ID = keccak256("ETH-USD");

    IToken public token;
    IVault public vault;
    IConfigurator public cfg;
    IVerifier public verifier;
    IEngine public ch;
    IAggregator[N_MARKETS] public aggs;
    int256[N_MARKETS] public answer; // each aggregator's answer, 8 decimals
    int256[N_MARKETS] internal minAnswer;
    int256[N_MARKETS] internal maxAnswer;
    uint256[N_MARKETS] internal defaultCap; // the open-interest cap each market starts with
    bool[N_MARKETS] public settled; // settled at a fixed price (its answer no longer moves)

    function _code(string memory name) internal view returns (bytes memory) {
        return vm.parseBytes(vm.readFile(string.concat("bytecode/", name, ".hex")));
    }

    function _create(string memory name, bytes memory args) internal returns (address out) {
        bytes memory init = bytes.concat(_code(name), args);
        assembly {
            out := create(0, add(init, 0x20), mload(init))
        }
        require(out != address(0), string.concat("deploy failed: ", name));
    }

    function _deploy(uint256 pool, uint256 insurance) internal {
        token = IToken(_create("MockERC20", abi.encode("USD Coin (mock)", "USDC", uint8(6))));
        vault = IVault(_create("LPVault", abi.encode("Margin Maintenance LP", "mmLP", uint8(12))));
        cfg = IConfigurator(_create("Configurator", ""));
        verifier = IVerifier(_create("PriceVerifier", abi.encode(address(cfg))));
        // The engine's cold functions run in its storage from the extension (its __default__).
        bytes memory wiring = abi.encode(address(token), address(vault), address(cfg), address(verifier));
        address ext = _create("ClearinghouseExtension", wiring);
        ch = IEngine(_create("Clearinghouse", bytes.concat(wiring, abi.encode(ext))));
        vault.bind(address(ch));
        cfg.bind(address(ch), address(this), 5_000, 8_000, 1 * USDC, 1_000);
        // Signed prices for ETH: 2 of 3 signers (keys 1, 2, 3), the market's feed a
        // SignedPriceFeed over its push adapter (trades 60 s, marks 120 s).
        address[] memory set = new address[](3);
        for (uint256 i; i < 3; ++i) {
            set[i] = vm.addr(SIGNER_KEY + i);
        }
        _sortAddresses(set);
        cfg.set_price_signers(set, 2);
        string[2] memory names = ["ETH / USD", "BTC / USD"];
        int256[2] memory start = [int256(2_000e8), int256(60_000e8)];
        uint256[2] memory maxOi = [uint256(1_000_000), uint256(50_000)];
        for (uint256 m; m < N_MARKETS; ++m) {
            address agg = _create("MockAggregator", abi.encode(uint8(8), names[m], start[m]));
            address feed = _create(
                "PriceFeed",
                abi.encode(agg, HEARTBEAT, int256(0), type(int256).max, address(0), uint256(0), STALE_WINDOW, 500)
            );
            if (m == SIGNED_MARKET) {
                cfg.set_price_feed(ETH_FEED_ID, feed, HEARTBEAT, SIGNED_MAX_AGE, 200, 1_000);
                feed = _create(
                    "SignedPriceFeed",
                    abi.encode(address(verifier), ETH_FEED_ID, feed, SIGNED_TRADE_AGE, SIGNED_MAX_AGE)
                );
            }
            cfg.add_market(feed, 1_000, 500, 100, 5, maxOi[m] * WAD, 10 * USDC);
            aggs[m] = IAggregator(agg);
            defaultCap[m] = maxOi[m] * WAD;
            answer[m] = start[m];
            minAnswer[m] = start[m] / 200; // 10 / 300 USD
            maxAnswer[m] = start[m] * 50;
        }
        if (pool > 0) {
            token.mint(address(this), pool);
            token.approve(address(ch), type(uint256).max);
            vault.add_liquidity(pool, 0);
            // Shares held by the deployer: an LP that never moves (the pool's floor).
        }
        if (insurance > 0) {
            token.mint(address(this), insurance);
            ch.fund_insurance(insurance);
        }
    }

    /// A fresh answer for market `m` (clamped to the world's price range), timed now.
    function _setAnswer(uint256 m, int256 a) internal {
        if (settled[m]) return;
        if (a < minAnswer[m]) a = minAnswer[m];
        if (a > maxAnswer[m]) a = maxAnswer[m];
        answer[m] = a;
        aggs[m].set_price(a);
    }

    function _sortAddresses(address[] memory a) internal pure {
        for (uint256 i = 1; i < a.length; ++i) {
            for (uint256 j = i; j > 0 && a[j - 1] > a[j]; --j) {
                (a[j - 1], a[j]) = (a[j], a[j - 1]);
            }
        }
    }

    /// One ETH report at `price` (WAD) published at `at`, signed by the first `count` of the
    /// three signers (in ascending address order, as the verifier wants them).
    function _signedUpdate(uint256 price, uint256 at, uint256 count) internal view returns (bytes memory) {
        bytes32 digest = verifier.report_digest(ETH_FEED_ID, price, 0, at);
        address[] memory who = new address[](count);
        uint256[] memory keyOf = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            keyOf[i] = SIGNER_KEY + i;
            who[i] = vm.addr(keyOf[i]);
        }
        for (uint256 i = 1; i < count; ++i) {
            for (uint256 j = i; j > 0 && who[j - 1] > who[j]; --j) {
                (who[j - 1], who[j]) = (who[j], who[j - 1]);
                (keyOf[j - 1], keyOf[j]) = (keyOf[j], keyOf[j - 1]);
            }
        }
        bytes memory sigs;
        for (uint256 i; i < count; ++i) {
            (uint8 v, bytes32 r, bytes32 s_) = vm.sign(keyOf[i], digest);
            sigs = bytes.concat(sigs, r, s_, bytes1(v));
        }
        return bytes.concat(
            bytes1(0x01), bytes1(0x01), ETH_FEED_ID, bytes32(price), bytes32(0), bytes8(uint64(at)), bytes1(uint8(count)), sigs
        );
    }

    function _refreshAll() internal {
        for (uint256 m; m < N_MARKETS; ++m) {
            aggs[m].set_price(answer[m]);
        }
    }

    /// The market's price as the engine reads it: WAD.
    function _priceWad(uint256 m) internal view returns (uint256) {
        return uint256(answer[m]) * 1e10;
    }
}
