//! Image guide (`/images/guide`): how to prepare a virtual machine's disk for this console,
//! the operating systems it offers, which formats it accepts and what inspection refuses (and why), how to convert with
//! `qemu-img`, and how to resume an upload. Linked from the Image List and Create Image.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::app::components::breadcrumb::Breadcrumb;
use crate::domain::attributes::Architecture;
use crate::domain::image::DiskFormat;
use crate::domain::image_spec::{MinDiskGb, MinRamGb};
use crate::domain::os_catalogue::{OsPlatform, describe_versions};
use crate::domain::validation::with_thousands;

/// A shell command to copy, shown as a block.
#[component]
fn Command(text: &'static str) -> impl IntoView {
    view! { <pre class="command"><code>{text}</code></pre> }
}

#[component]
pub fn ImageGuidePage() -> impl IntoView {
    let extensions = DiskFormat::every_extension();
    view! {
        <Title text="Image guide" />
        <Breadcrumb current="Image guide" />
        <div class="page-header">
            <div>
                <h1>"Image guide"</h1>
                <p class="lede">
                    "Moving a virtual machine here: how to prepare its disk, which formats the console accepts and why it refuses some files, how to convert a disk with qemu-img, and how to go on with an upload that was interrupted."
                </p>
            </div>
            <A href="/images/create" attr:class="btn btn-primary">"Create Image"</A>
        </div>
        <div class="guide">
            <section class="card guide-section" aria-labelledby="guide-prepare">
                <h2 id="guide-prepare">"1. Prepare the virtual machine"</h2>
                <p>"Before you take its disk, on the machine itself:"</p>
                <ul>
                    <li>
                        <strong>"cloud-init"</strong>
                        " sets the host name, users, SSH keys and network of each new machine at its first boot. Install it (the cloud-init package on every listed distribution) and tick the cloud-init feature on Create Image."
                    </li>
                    <li>
                        <strong>"qemu-guest-agent"</strong>
                        " lets the platform shut the machine down cleanly, freeze its file systems for consistent snapshots and read its addresses. Install and enable it, and tick the qemu-guest-agent feature."
                    </li>
                    <li>
                        "Remove what belongs to this one machine: SSH host keys, "
                        <code>"/etc/machine-id"</code>
                        " (leave it empty), fixed MAC addresses in network settings, and shell history. "
                        <code>"cloud-init clean"</code>
                        " does much of it. Then shut the machine down before copying its disk."
                    </li>
                    <li>"Use virtio disk and network drivers (every listed Linux distribution has them)."</li>
                    <li>
                        <strong>"Windows"</strong>
                        ": install the virtio drivers and the QEMU guest agent (the virtio-win package), Cloudbase-Init in place of cloud-init, then generalize the system with "
                        <code>"sysprep /generalize /oobe /shutdown"</code>
                        "."
                    </li>
                </ul>
                <h3>"Operating system, platform and version"</h3>
                <p>"Create Image asks for the Operating system, then its System platform and, if you know it, the System version. The versions offered depend on the architecture:"</p>
                // Focusable, so a keyboard can scroll it on a narrow screen.
                <div class="table-wrap" tabindex="0" role="region" aria-labelledby="guide-versions">
                    <table class="data-table guide-table">
                        <caption class="visually-hidden" id="guide-versions">"System versions offered by platform and architecture"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Operating system"</th>
                                <th scope="col">"System platform"</th>
                                {Architecture::ALL.iter().map(|a| view! { <th scope="col">{a.as_str()}</th> }).collect_view()}
                            </tr>
                        </thead>
                        <tbody>
                            {OsPlatform::ALL.iter().map(|platform| view! {
                                <tr>
                                    <td>{platform.family().label()}</td>
                                    <th scope="row">{platform.label()}</th>
                                    {Architecture::ALL.iter().map(|a| {
                                        let versions = platform.versions_for(*a);
                                        let text = if versions.is_empty() {
                                            "Not offered".to_owned()
                                        } else {
                                            describe_versions(&versions)
                                        };
                                        view! { <td>{text}</td> }
                                    }).collect_view()}
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <dl class="guide-terms">
                    <dt>"Minimum Disk"</dt>
                    <dd>{format!(
                        "The smallest disk a machine made from the image may have, in GB (0 to {}). It must hold the disk's virtual size (Details shows it after the import), not only the file's size: a 2 GB qcow2 file of a 20 GB disk needs 20 GB.",
                        with_thousands(MinDiskGb::MAX)
                    )}</dd>
                    <dt>"Minimum RAM"</dt>
                    <dd>{format!(
                        "The least memory, in GB (0 to {}), the operating system needs to boot and run; 0 means no minimum.",
                        with_thousands(MinRamGb::MAX)
                    )}</dd>
                </dl>
            </section>

            <section class="card guide-section" aria-labelledby="guide-formats">
                <h2 id="guide-formats">"2. Formats the console accepts"</h2>
                <p>{format!(
                    "A disk image file ({extensions}). Its name declares the format; the console then reads the file's own header and accepts it only if the header is exactly that format."
                )}</p>
                <ul>
                    <li><strong>"qcow2"</strong>" (QEMU, KVM, OpenStack): preferred; only the used blocks take space."</li>
                    <li><strong>"Raw"</strong>" (.raw, .img): the disk byte for byte, as large as the disk."</li>
                    <li><strong>"VMDK"</strong>" (VMware): one self-contained file (monolithicSparse or streamOptimized, as an OVA holds it)."</li>
                    <li><strong>"VHD and VHDX"</strong>" (Hyper-V, Azure): fixed or dynamic disks."</li>
                    <li><strong>"ISO"</strong>": an installation image a machine boots from to install an operating system."</li>
                </ul>
            </section>

            <section class="card guide-section" aria-labelledby="guide-refusals">
                <h2 id="guide-refusals">"3. What inspection refuses, and why"</h2>
                <p>"An image is refused, and marked Failed with the reason, when the platform could not use it safely on its own:"</p>
                <dl class="guide-terms">
                    <dt>"A backing file (qcow2)"</dt>
                    <dd>"The image only holds changes on top of another file, which the console does not have; and a machine started from it would open whatever path it names on the host. Flatten it with qemu-img convert (below)."</dd>
                    <dt>"An external data file (qcow2)"</dt>
                    <dd>"Its data lives in another file, with the same two problems. Convert it into one file."</dd>
                    <dt>"Encryption (qcow2 or LUKS)"</dt>
                    <dd>"The platform has no key to read it, and the console cannot check what is inside. Convert the decrypted disk."</dd>
                    <dt>"A VMDK in several files"</dt>
                    <dd>"A descriptor that names other files (split or flat extents, as VMware Workstation and ESXi datastores keep them) is not the disk: its data is elsewhere. Convert it with the descriptor and its extents side by side."</dd>
                    <dt>"A differencing VHD or VHDX"</dt>
                    <dd>"Like a backing file: it needs its parent disk. Merge it in Hyper-V, or convert it."</dd>
                    <dt>"A different or a second format"</dt>
                    <dd>"A file whose header is not the declared format, or that two formats both claim (one header hidden inside another), or a raw file that any format but a partition table claims. Rename the file to its real format, or convert it."</dd>
                    <dt>"Formats the console does not accept"</dt>
                    <dd>"VDI (VirtualBox), Parallels, Bochs, cloop, DMG, QED and LUKS. Convert them to qcow2."</dd>
                </dl>
            </section>

            <section class="card guide-section" aria-labelledby="guide-convert">
                <h2 id="guide-convert">"4. Let the console convert, or convert with qemu-img"</h2>
                <p>
                    "The console can convert for you: choose Convert to qcow2 (or Raw) on Create Image and send the VMDK (monolithicSparse or streamOptimized), VHD (fixed or dynamic), VHDX or raw file as it is. Once it has arrived and passed inspection, the image is Converting, with its progress; qemu-img must read the file exactly as the inspection did, and the result is inspected again before it becomes Active. The image's SHA-512 and MD5 are then the converted file's, and Details keeps the file you sent as the Source file, with its own SHA-512 and MD5, so you can still check what you sent. ISO installation images are never converted. A file the inspection refuses (below) is never converted either: convert it yourself first."
                </p>
                <p>
                    "To convert on your own computer: qemu-img comes with QEMU (the qemu-utils package on Debian and Ubuntu, qemu-img on RHEL and its rebuilds, and a Windows build). First look at the disk: its format, virtual size and any backing file."
                </p>
                <Command text="qemu-img info --backing-chain disk.vmdk" />
                <p>"Then convert it to qcow2 (-p shows progress):"</p>
                <Command text="qemu-img convert -p -f vmdk -O qcow2 disk.vmdk disk.qcow2" />
                <Command text="qemu-img convert -p -f vpc -O qcow2 disk.vhd disk.qcow2" />
                <Command text="qemu-img convert -p -f vhdx -O qcow2 disk.vhdx disk.qcow2" />
                <p>
                    "For raw, use -O raw and name the file .raw or .img. Converting reads through a backing chain, split VMDK extents and a differencing disk's parents, so the result is one file with none of them. Add -c to compress a qcow2 file (smaller to send, slower to read)."
                </p>
                <p>"Finally take its checksum and paste it into the Checksum field on Create Image: the import fails if the bytes that arrive differ."</p>
                <Command text="sha256sum disk.qcow2" />
                <p>
                    "On Windows: " <code>"certutil -hashfile disk.qcow2 SHA256"</code>
                    ". The console accepts the digest alone or written sha256:…, and MD5 or SHA-512 as well."
                </p>
            </section>

            <section class="card guide-section" aria-labelledby="guide-resume">
                <h2 id="guide-resume">"5. Upload from your computer, and resume"</h2>
                <ul>
                    <li>"On Create Image choose Local file and pick the converted file. The Image List shows its progress, with Pause and Cancel Upload."</li>
                    <li>"If the network drops, the upload goes on by itself from where the server stopped."</li>
                    <li>"If the tab was closed or the computer restarted, the Image List shows Resume Upload beside the image: pick the same file and it continues from the last piece the server kept. Create Image also offers to resume when you pick a file it started."</li>
                    <li>"An upload nothing arrives for within 24 hours (the console's default) expires, and its bytes are deleted; create the image again then."</li>
                    <li>"A file on another server imports faster from its URL (Image file URL on Create Image) than through your computer."</li>
                </ul>
            </section>
        </div>
    }
}
