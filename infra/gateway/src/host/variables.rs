//! `fermyon:spin/variables@2.0.0`: a component reads only its own resolved variables.

use super::HostState;
use super::fermyon::spin::variables::{Error, Host};
use crate::manifest::check_variable_name;

impl Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if let Err(e) = check_variable_name(&name) {
            return Ok(Err(Error::InvalidName(e.to_string())));
        }
        Ok(match self.grants.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::Undefined(format!("no variable for {name:?}"))),
        })
    }
}
