// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The surface of the Vyper contracts the campaign drives (abi/*.json), and the few forge
// cheatcodes it uses (npm has no forge-std with invariant support: declared here).

struct Position {
    int256 size;
    uint256 entry_price;
}

struct MarketInfo {
    address feed;
    uint256 initial_margin_bps;
    uint256 maintenance_margin_bps;
    uint256 liquidation_fee_bps;
    uint256 trading_fee_bps;
    uint256 max_open_interest;
    uint256 min_position_notional;
    uint256 open_interest_long;
    uint256 open_interest_short;
}

struct PoolState {
    uint256 pool_assets;
    uint256 total_debt;
    uint256 reserve;
    uint256 trader_profit;
    uint256 trader_loss;
    bool paused;
    uint256 claims;
    uint256 trader_collateral;
    bool exposed;
    uint256 priced_at;
}

struct AccountStatus {
    address account;
    int256 equity;
    uint256 maintenance;
    uint256 initial;
    bool liquidatable;
}

struct Request {
    address owner;
    bool is_deposit;
    uint256 amount;
    uint256 min_out;
    uint256 created;
}

interface IToken {
    function balanceOf(address) external view returns (uint256);
    function totalSupply() external view returns (uint256);
    function approve(address, uint256) external returns (bool);
    function transfer(address, uint256) external returns (bool);
    function mint(address, uint256) external;
}

interface IAggregator {
    function set_price(int256 answer) external;
    function set_answer_at(int256 answer, uint256 updated_at) external;
    function latestAnswer() external view returns (int256);
    function latestTimestamp() external view returns (uint256);
}

interface IEngine {
    function collateral(address) external view returns (int256);
    function total_debt() external view returns (uint256);
    function claims(address) external view returns (uint256);
    function total_claims() external view returns (uint256);
    function market_count() external view returns (uint256);
    function paused() external view returns (bool);
    function market(uint256) external view returns (MarketInfo memory);
    function deposit(uint256 amount) external;
    function withdraw(uint256 amount) external;
    function position(address, uint256) external view returns (Position memory);
    function account_market_ids(address) external view returns (uint256[] memory);
    function trade(uint256 market_id, int256 size_delta, uint256 acceptable_price) external;
    function liquidate(address account) external returns (uint256);
    function liquidate_many(address[] calldata accounts) external returns (uint256);
    function is_liquidatable(address) external view returns (bool);
    function equity(address) external view returns (int256);
    function maintenance_requirement(address) external view returns (uint256);
    function initial_requirement(address) external view returns (uint256);
    function margin_status(address[] calldata) external view returns (AccountStatus[] memory);
    function liquidation_params() external view returns (uint256, uint256, uint256);
    function pool_state() external view returns (PoolState memory);
    function fund_insurance(uint256 amount) external;
    function settle_claim(address account) external returns (uint256);
    function update_prices(bytes calldata updates) external payable;
    function trade_with_prices(bytes calldata updates, uint256 market_id, int256 size_delta, uint256 acceptable_price)
        external
        payable;
    function liquidate_with_prices(bytes calldata updates, address[] calldata accounts) external payable returns (uint256);
    function pool_assets() external view returns (uint256);
    function pool_reserve_bps() external view returns (uint256);
    function insurance_fund() external view returns (uint256);
}

interface IVerifier {
    function report_digest(bytes32 feed_id, uint256 price, uint256 confidence, uint256 publish_time)
        external
        view
        returns (bytes32);
    function latest(bytes32 feed_id) external view returns (uint256, uint256);
}

interface IVault {
    function bind(address engine_) external;
    function totalSupply() external view returns (uint256);
    function balanceOf(address) external view returns (uint256);
    function transfer(address, uint256) external returns (bool);
    function add_liquidity(uint256 assets, uint256 min_shares) external returns (uint256);
    function remove_liquidity(uint256 shares, uint256 min_assets) external returns (uint256);
    function request_deposit(uint256 assets, uint256 min_shares) external returns (uint256);
    function request_withdrawal(uint256 shares, uint256 min_assets) external returns (uint256);
    function execute_request(uint256 request_id) external;
    function cancel_request(uint256 request_id) external;
    function executable(uint256 request_id) external view returns (bool);
    function free_liquidity() external view returns (uint256);
    function convert_to_assets(uint256 shares) external view returns (uint256);
    function execution_fee() external view returns (uint256);
    function requests(uint256) external view returns (Request memory);
    function request_count() external view returns (uint256);
    function escrowed_shares() external view returns (uint256);
    function first_live_request() external view returns (uint256);
}

interface IConfigurator {
    function bind(
        address engine_,
        address guardian_,
        uint256 keeper_share_bps_,
        uint256 max_partial_bps_,
        uint256 min_keeper_reward_,
        uint256 pool_reserve_bps_
    ) external;
    function add_market(
        address feed,
        uint256 initial_margin_bps,
        uint256 maintenance_margin_bps,
        uint256 liquidation_fee_bps,
        uint256 trading_fee_bps,
        uint256 max_open_interest,
        uint256 min_position_notional
    ) external returns (uint256);
    function set_market_risk(uint256 market_id, uint256 im, uint256 mm, uint256 liq, uint256 trade) external;
    function apply_market_risk(uint256 market_id) external;
    function set_liquidation_params(uint256 keeper_share_bps, uint256 max_partial_bps, uint256 min_keeper_reward)
        external;
    function cancel_market_risk(uint256 market_id) external;
    function set_market_limits(uint256 market_id, uint256 max_open_interest, uint256 min_position_notional)
        external;
    function set_market_feed(uint256 market_id, address feed) external;
    function propose_settlement(uint256 market_id, address feed) external;
    function settle_market(uint256 market_id) external;
    function set_pool_reserve(uint256 pool_reserve_bps) external;
    function set_price_signers(address[] calldata signers, uint256 threshold) external;
    function set_price_feed(
        bytes32 feed_id,
        address reference_,
        uint256 ref_max_age,
        uint256 max_age,
        uint256 max_conf_bps,
        uint256 max_dev_bps
    ) external;
    function pause() external;
    function unpause() external;
}

struct Log {
    bytes32[] topics;
    bytes data;
    address emitter;
}

interface Vm {
    function prank(address) external;
    function startPrank(address) external;
    function stopPrank() external;
    function warp(uint256) external;
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function readFile(string calldata) external view returns (string memory);
    function parseBytes(string calldata) external pure returns (bytes memory);
    function envOr(string calldata, string calldata) external view returns (string memory);
    function envOr(string calldata, uint256) external view returns (uint256);
    function writeLine(string calldata, string calldata) external;
    function toString(uint256) external pure returns (string memory);
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
}

Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
