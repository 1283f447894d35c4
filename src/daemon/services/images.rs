//! containerd.services.images.v1.Images over the metadata database's image records:
//! Get, List (filters), Create, Update (field masks), Delete (with `sync`, garbage
//! collection runs before the answer, as containerd's). Publishes `/images/create`,
//! `/images/update` and `/images/delete`.

use std::sync::Arc;

use anyhow::Context as _;
use tonic::{Request, Response, Status};

use crate::api::namespace;
use crate::api::services::images::v1::images_server::{Images, ImagesServer};
use crate::api::services::images::v1::{
    CreateImageRequest, CreateImageResponse, DeleteImageRequest, GetImageRequest, GetImageResponse,
    Image, ImageCreate, ImageDelete, ImageUpdate, ListImagesRequest, ListImagesResponse,
    UpdateImageRequest, UpdateImageResponse,
};
use crate::api::status::IntoStatus;
use crate::content::digest::go_validate;
use crate::daemon::context::Daemon;
use crate::daemon::services::convert::{
    descriptor_in, descriptor_out, labels_in, labels_out, timestamp_nanos,
};
use crate::daemon::services::plumbing::blocking;
use crate::errdefs::{err, ErrorKind};
use crate::metadata::encoding::validate_labels;
use crate::metadata::images;

pub struct ImagesService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> ImagesServer<ImagesService> {
    ImagesServer::new(ImagesService { d: d.clone() })
}

fn image_out(i: &images::Image) -> Image {
    Image {
        name: i.name.clone(),
        labels: labels_out(&i.labels),
        target: Some(descriptor_out(&i.target)),
        created_at: Some(timestamp_nanos(i.created_at)),
        updated_at: Some(timestamp_nanos(i.updated_at)),
    }
}

/// The image of a Create (or of an Update that replaces the target), checked as
/// containerd's `validateImage` checks it, in its order and words: the name, the labels,
/// then the target's digest, size and media type.
fn image_in(i: Option<Image>) -> anyhow::Result<images::Image> {
    let i = i.unwrap_or_default();
    if i.name.is_empty() {
        return Err(ErrorKind::InvalidArgument.err("Image.Name required"));
    }
    let labels = labels_in(&i.labels);
    validate_labels(&labels).context("image.Labels")?;
    let t = i.target.unwrap_or_default();
    if let Err(why) = go_validate(&t.digest) {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!("Target.Digest {:?} invalid: {why}", t.digest),
        ));
    }
    if t.size <= 0 {
        return Err(err(
            ErrorKind::InvalidArgument,
            "Target.Size must be greater than zero",
        ));
    }
    if t.media_type.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "Target.MediaType must be set",
        ));
    }
    Ok(images::Image {
        name: i.name,
        target: descriptor_in(&t)?,
        labels,
        created_at: 0,
        updated_at: 0,
    })
}

#[tonic::async_trait]
impl Images for ImagesService {
    async fn get(
        &self,
        req: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let name = req.into_inner().name;
        let i = blocking(move || d.db.view(|v| images::get(v, &ns, &name))).await?;
        Ok(Response::new(GetImageResponse {
            image: Some(image_out(&i)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let filters = req.into_inner().filters;
        let list = blocking(move || {
            let f: Vec<&str> = filters.iter().map(String::as_str).collect();
            d.db.view(|v| images::list(v, &ns, &f))
        })
        .await?;
        Ok(Response::new(ListImagesResponse {
            images: list.iter().map(image_out).collect(),
        }))
    }

    async fn create(
        &self,
        req: Request<CreateImageRequest>,
    ) -> Result<Response<CreateImageResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let image = req.into_inner().image;
        let i = blocking(move || {
            let i = image_in(image)?;
            let i = d.db.update(|tx| images::create(tx, &ns, i))?;
            d.events.publish(
                &ns,
                "/images/create",
                &ImageCreate {
                    name: i.name.clone(),
                    labels: labels_out(&i.labels),
                },
            );
            Ok(i)
        })
        .await?;
        Ok(Response::new(CreateImageResponse {
            image: Some(image_out(&i)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateImageRequest>,
    ) -> Result<Response<UpdateImageResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let req = req.into_inner();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let image = req.image;
        let i = blocking(move || {
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            // With a mask naming only labels or annotations, the target the client sends is
            // not used (ctr sends an empty one, as Go's non-nullable field): the image's own
            // stands in for it, annotations from the request.
            let needs_target = paths.is_empty() || paths.contains(&"target");
            let mut i = image.unwrap_or_default();
            if i.name.is_empty() {
                return Err(ErrorKind::InvalidArgument.err("Image.Name required"));
            }
            // An unknown image is NotFound before anything is validated (containerd).
            let cur = d.db.view(|v| images::get(v, &ns, &i.name))?;
            if !needs_target {
                let annotations = i.target.take().map(|t| t.annotations).unwrap_or_default();
                let mut t = descriptor_out(&cur.target);
                t.annotations = annotations;
                i.target = Some(t);
            }
            let i = image_in(Some(i))?;
            let i = d.db.update(|tx| images::update(tx, &ns, i, &paths))?;
            d.events.publish(
                &ns,
                "/images/update",
                &ImageUpdate {
                    name: i.name.clone(),
                    labels: labels_out(&i.labels),
                },
            );
            Ok(i)
        })
        .await?;
        Ok(Response::new(UpdateImageResponse {
            image: Some(image_out(&i)),
        }))
    }

    async fn delete(&self, req: Request<DeleteImageRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let req = req.into_inner();
        let sync = req.sync;
        blocking(move || {
            d.db.update(|tx| {
                if let Some(t) = &req.target {
                    // Delete only the image that still points where the caller saw it.
                    let cur = images::get(tx, &ns, &req.name)?;
                    if cur.target.digest.to_string() != t.digest {
                        return Err(err(
                            ErrorKind::FailedPrecondition,
                            format!("image {:?}: target does not match", req.name),
                        ));
                    }
                }
                images::delete(tx, &ns, &req.name)
            })?;
            d.events.publish(
                &ns,
                "/images/delete",
                &ImageDelete {
                    name: req.name.clone(),
                },
            );
            Ok(())
        })
        .await?;
        if sync {
            self.d.gc.collect_now(&self.d).await.status()?;
        } else {
            self.d.gc.schedule();
        }
        Ok(Response::new(()))
    }
}
