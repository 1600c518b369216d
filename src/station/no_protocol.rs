//! The answer to a handshake that offered no OCPP subprotocol voltgate
//! speaks.

use actix::prelude::*;
use actix_web_actors::ws;

use crate::metrics::CONNECTIONS_CLOSED;

/// The actor for a handshake that offered no subprotocol voltgate speaks:
/// OCPP-J says to complete the handshake without one and close at once.
pub struct NoProtocol;

impl Actor for NoProtocol {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::counter!(CONNECTIONS_CLOSED, "reason" => "no_subprotocol").increment(1);
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Protocol,
            description: Some(
                "no supported OCPP subprotocol offered (ocpp2.0.1, ocpp1.6)".to_owned(),
            ),
        }));
        ctx.stop();
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for NoProtocol {
    fn handle(&mut self, _: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
