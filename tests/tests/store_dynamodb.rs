//! The store contract against DynamoDB in the local AWS emulator, over real HTTP.

use shiplane_e2e::fresh_store;

shiplane::store_contract_tests!(fresh_store());
